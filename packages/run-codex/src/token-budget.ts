/**
 * Following the agent's token usage while it runs, so a run's cap
 * (watcher.runner_max_tokens, front matter max_tokens) can stop it.
 *
 * `codex exec --json` reports usage only in `turn.completed`, and `codex
 * exec` is a single turn: that number comes when the agent is done. codex
 * also writes a `token_count` event into its session file
 * (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`) after every model
 * response, carrying the session's running total (codex 0.171, checked
 * 2026-11-30). Following those files is what stops the agent at the first
 * response past the cap, so the overshoot is at most one response.
 *
 * The session files are in the run's own CODEX_HOME, which the agent can
 * write: an agent that means to could hold its count down. The cap stops a
 * runaway agent, not a hostile one (that is the model provider's quota).
 * Nothing here follows a symlink or blocks on a FIFO the agent planted, and
 * each poll reads a bounded number of bytes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno, expectSyntaxError, totalTokens, type TokenUsage } from '@prompt-valet/core';

/** Most bytes read from the session files per poll, all together; the rest waits for the next poll. */
const READ_PER_POLL = 4 * 1024 * 1024;
/**
 * The agent can fill its CODEX_HOME with folders and files: the walk looks at
 * so many entries per folder and follows so many session files, so a poll
 * (which also checks the time limits) never takes long. codex makes one
 * session file per run.
 */
const MAX_ENTRIES_PER_FOLDER = 256;
const MAX_SESSION_FILES = 16;
/** A line longer than this is no token_count event (those are about 1 KiB): skipped. */
const MAX_LINE = 1024 * 1024;
/** How far back an existing session file is read for its running total. */
const BASELINE_TAIL = 1024 * 1024;
/** sessions/YYYY/MM/DD/rollout-*.jsonl */
const SESSION_DEPTH = 4;

interface FileState {
  offset: number;
  /** an incomplete last line, kept for the next read */
  pending: string;
  /** skipping the rest of an over-long line */
  skipping: boolean;
  /** the running total when this run started (a resumed session's earlier turns) */
  baseline: TokenUsage;
  latest: TokenUsage;
}

export class SessionUsageFollower {
  private readonly files = new Map<string, FileState>();
  private readonly sessions: string;

  constructor(codexHome: string) {
    this.sessions = path.join(codexHome, 'sessions');
  }

  /** Before the agent starts: what session files already hold belongs to earlier runs. */
  start(): void {
    for (const file of sessionFiles(this.sessions)) {
      const size = regularFileSize(file);
      if (size === undefined) continue;
      const baseline = lastTotalIn(file, size) ?? {};
      this.files.set(file, { offset: size, pending: '', skipping: false, baseline, latest: baseline });
    }
  }

  /** Read what the session files gained since the last call; returns this run's usage so far. */
  poll(): TokenUsage | undefined {
    let budget = READ_PER_POLL;
    for (const file of sessionFiles(this.sessions)) {
      let state = this.files.get(file);
      if (!state) {
        if (this.files.size >= MAX_SESSION_FILES) continue;
        state = { offset: 0, pending: '', skipping: false, baseline: {}, latest: {} };
        this.files.set(file, state);
      }
      budget -= readNewLines(file, state, budget);
      if (budget <= 0) break;
    }
    return this.usage();
  }

  /** This run's usage: each session's latest running total less what it held before. */
  usage(): TokenUsage | undefined {
    const sum: TokenUsage = {};
    let seen = false;
    for (const state of this.files.values()) {
      for (const [kind, value] of Object.entries(state.latest)) {
        const used = value - (state.baseline[kind] ?? 0);
        if (used <= 0) continue;
        sum[kind] = (sum[kind] ?? 0) + used;
        seen = true;
      }
    }
    return seen ? sum : undefined;
  }
}

/**
 * The usage a run records: codex's own end-of-run figure when it printed one,
 * else the running total followed in its session (an agent stopped mid-turn
 * prints none), whichever counts more tokens.
 */
export function finalUsage(reported: TokenUsage | undefined, followed: TokenUsage | undefined): TokenUsage | undefined {
  if (!followed) return reported;
  if (!reported) return followed;
  return totalTokens(followed) > totalTokens(reported) ? followed : reported;
}

function sessionFiles(dir: string, depth = SESSION_DEPTH): string[] {
  const found: string[] = [];
  for (const e of someEntries(dir)) {
    if (found.length >= MAX_SESSION_FILES) break;
    const p = path.join(dir, e.name);
    // Dirent types come from the directory itself: a symlink is never a folder or file here.
    if (e.isDirectory() && depth > 1) found.push(...sessionFiles(p, depth - 1));
    else if (e.isFile() && depth === 1 && e.name.startsWith('rollout-') && e.name.endsWith('.jsonl')) found.push(p);
  }
  return found.slice(0, MAX_SESSION_FILES);
}

/** At most MAX_ENTRIES_PER_FOLDER entries of a folder, read without listing the rest. */
function someEntries(dir: string): fs.Dirent[] {
  let handle: fs.Dir;
  try {
    handle = fs.opendirSync(dir);
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return [];
  }
  const entries: fs.Dirent[] = [];
  try {
    for (let e = handle.readSync(); e !== null && entries.length < MAX_ENTRIES_PER_FOLDER; e = handle.readSync()) entries.push(e);
  } finally {
    handle.closeSync();
  }
  return entries;
}

function openNoFollow(file: string): number | undefined {
  try {
    return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ELOOP', 'EACCES', 'ENXIO');
    return undefined;
  }
}

function regularFileSize(file: string): number | undefined {
  const fd = openNoFollow(file);
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() ? st.size : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Read what `file` gained (at most `maxBytes`); returns the bytes read. */
function readNewLines(file: string, state: FileState, maxBytes: number): number {
  const fd = openNoFollow(file);
  if (fd === undefined) return 0;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size <= state.offset) return 0;
    const buf = Buffer.alloc(Math.min(st.size - state.offset, maxBytes));
    const n = fs.readSync(fd, buf, 0, buf.length, state.offset);
    state.offset += n;
    const lines = (state.pending + buf.subarray(0, n).toString('utf8')).split('\n');
    state.pending = lines.pop() ?? '';
    for (const line of lines) {
      if (state.skipping) {
        state.skipping = false;
        continue;
      }
      const total = totalOfLine(line);
      if (total) state.latest = total;
    }
    if (state.pending.length > MAX_LINE) {
      state.pending = '';
      state.skipping = true;
    }
    return n;
  } finally {
    fs.closeSync(fd);
  }
}

/** The last running total in an existing session file (a resumed session), from its tail. */
function lastTotalIn(file: string, size: number): TokenUsage | undefined {
  const fd = openNoFollow(file);
  if (fd === undefined) return undefined;
  try {
    const start = Math.max(0, size - BASELINE_TAIL);
    const buf = Buffer.alloc(size - start);
    const n = fs.readSync(fd, buf, 0, buf.length, start);
    let last: TokenUsage | undefined;
    for (const line of buf.subarray(0, n).toString('utf8').split('\n')) last = totalOfLine(line) ?? last;
    return last;
  } finally {
    fs.closeSync(fd);
  }
}

/** `{"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{…}}}}` → the counts. */
function totalOfLine(line: string): TokenUsage | undefined {
  if (!line.includes('"token_count"')) return undefined;
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch (err) {
    expectSyntaxError(err);
    return undefined;
  }
  const payload = (event as { payload?: { type?: unknown; info?: { total_token_usage?: unknown } | null } } | null)?.payload;
  if (payload?.type !== 'token_count') return undefined;
  const total = payload.info?.total_token_usage;
  if (typeof total !== 'object' || total === null) return undefined;
  const out: TokenUsage = {};
  for (const [k, v] of Object.entries(total as Record<string, unknown>)) {
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[k] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
