import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  expectErrno, expectSyntaxError, readJsonIfExists, readStepDone, runFile, runRootFor, StepError, writeJsonAtomic,
  type FollowUpTarget, type Logger, type TargetSection, type ValetRoots,
} from '@prompt-valet/core';
import { hostJailDirs } from './jail.js';
import { readFileNoFollow, UnsafePathError, writeInsideNoFollow } from './safe-files.js';

/**
 * codex sessions, for follow-ups. codex keeps each conversation as
 * `<CODEX_HOME>/sessions/YYYY/MM/DD/rollout-<time>-<session id>.jsonl`
 * (checked with codex 0.171: `codex exec resume <id>` needs only that file
 * in its CODEX_HOME, and appends the new turns to it under the same id).
 * Every run has a CODEX_HOME of its own (processed/<run>/jail/codex-home),
 * so a run's session id is that of the one conversation there. It is
 * recorded in the run folder (`session.json`) and the agent section
 * (`agent.session_id`). A follow-up copies the earlier run's session file
 * into its own CODEX_HOME (the earlier run folder is only read) and resumes
 * it; when the session is not known it starts afresh with the earlier
 * work's title and summary quoted, and says so in the log.
 */
export const SESSION_FILE = 'session.json';

/** A session id as codex writes them (a UUID); anything else is never passed to codex. */
const SESSION_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ROLLOUT_RE = /^rollout-.*-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$/;
/** The largest session file carried over to a follow-up (a long conversation with big tool outputs). */
export const SESSION_MAX_BYTES = 64 * 1024 * 1024;
const SUMMARY_MAX_BYTES = 8 * 1024;

export interface RecordedSession {
  session_id: string;
  /** the session file, relative to the run's CODEX_HOME */
  file: string;
}

export function isSessionId(s: unknown): s is string {
  return typeof s === 'string' && SESSION_ID_RE.test(s);
}

/** The session id of a `thread.started` event (`codex exec --json`), if the line is one. */
export function sessionIdOfEvent(line: string): string | undefined {
  if (!line.includes('thread.started')) return undefined;
  try {
    const event = JSON.parse(line) as { type?: unknown; thread_id?: unknown };
    return event.type === 'thread.started' && isSessionId(event.thread_id) ? event.thread_id : undefined;
  } catch (err) {
    expectSyntaxError(err);
    return undefined;
  }
}

/** Entries of a folder the agent may have written to: real folders and files only, never a link. */
function plainEntries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() || e.isFile());
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return [];
  }
}

/** The session files under `<codexHome>/sessions/YYYY/MM/DD/`, with their ids and change times. */
function sessionFiles(codexHome: string): { rel: string; id: string; mtimeMs: number }[] {
  const out: { rel: string; id: string; mtimeMs: number }[] = [];
  const walk = (rel: string, depth: number): void => {
    for (const e of plainEntries(path.join(codexHome, rel))) {
      const child = path.posix.join(rel, e.name);
      if (e.isDirectory() && depth < 3) walk(child, depth + 1);
      const m = e.isFile() && depth === 3 ? ROLLOUT_RE.exec(e.name) : null;
      if (m) out.push({ rel: child, id: m[1]!, mtimeMs: fs.lstatSync(path.join(codexHome, child)).mtimeMs });
    }
  };
  walk('sessions', 0);
  return out;
}

/**
 * The run's session: the id codex announced (`thread.started`, with --json),
 * else the newest conversation in the run's own CODEX_HOME. Undefined when
 * codex wrote none (it failed before the first turn).
 */
export function findRunSession(codexHome: string, announced: string | undefined): RecordedSession | undefined {
  const files = sessionFiles(codexHome);
  const chosen = announced ? files.find((f) => f.id === announced) : files.sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
  return chosen ? { session_id: chosen.id, file: chosen.rel } : undefined;
}

export async function recordSession(runRoot: string, session: RecordedSession): Promise<void> {
  await writeJsonAtomic(path.join(runRoot, SESSION_FILE), session);
}

/** How a follow-up goes on: the earlier session resumed, or afresh with the earlier work quoted. */
export type Continuation =
  | { kind: 'resumed'; sessionId: string; from: string }
  | { kind: 'fresh'; why: string; preamble: string };

/**
 * Make the earlier run's session available to this run: its session file is
 * copied (never linked: this run must not write into another run's folder)
 * into this run's CODEX_HOME under the same name.
 */
export async function prepareContinuation(
  roots: Pick<ValetRoots, 'processed'>, followUp: FollowUpTarget, agentBranch: string, runCodexHome: string, log: Logger,
): Promise<Continuation> {
  const previousRoot = runRootFor(roots, followUp.previous_run);
  // A record may be forged: only a run of this very branch lends its conversation.
  const previousTarget = await readStepDone<TargetSection>(previousRoot, 'resolve');
  if (previousTarget?.agent_branch !== agentBranch) {
    throw new StepError('foreign_path', `target.follow_up.previous_run ${followUp.previous_run} is not a run of ${agentBranch}: its session is not used`);
  }
  const recorded = await readJsonIfExists<Partial<RecordedSession>>(path.join(previousRoot, SESSION_FILE)).catch((err: unknown) => {
    expectSyntaxError(err);
    return undefined;
  });
  let why: string;
  if (!recorded || !isSessionId(recorded.session_id)) {
    why = `run ${followUp.previous_run} recorded no codex session (${SESSION_FILE})`;
  } else {
    const source = sessionFiles(hostJailDirs(previousRoot).codexHome).find((f) => f.id === recorded.session_id);
    const got = source ? readPlainFile(path.join(hostJailDirs(previousRoot).codexHome, source.rel), SESSION_MAX_BYTES) : undefined;
    if (!source || !got) {
      why = `the session ${recorded.session_id} of run ${followUp.previous_run} is no longer in its CODEX_HOME`;
    } else if (got.truncated) {
      why = `the session ${recorded.session_id} of run ${followUp.previous_run} is larger than ${SESSION_MAX_BYTES} bytes`;
    } else {
      // This run's CODEX_HOME may hold what an earlier try's agent left: no link in it is followed.
      writeInsideNoFollow(runCodexHome, source.rel, got.data);
      return { kind: 'resumed', sessionId: recorded.session_id, from: followUp.previous_run };
    }
  }
  log.warn(`${why}: the follow-up starts a new codex session, with the earlier work's title and summary quoted in the prompt`);
  return { kind: 'fresh', why, preamble: await earlierWorkQuoted(previousRoot, followUp) };
}

/** At most `maxBytes` of a regular file, never through a link; undefined when missing or not a plain file. */
function readPlainFile(file: string, maxBytes: number): { data: Buffer; truncated: boolean } | undefined {
  try {
    return readFileNoFollow(file, maxBytes);
  } catch (err) {
    if (err instanceof UnsafePathError) return undefined;
    throw err;
  }
}

/** The earlier run's PR title and last message, quoted, for a follow-up that cannot resume the session. */
async function earlierWorkQuoted(previousRoot: string, followUp: FollowUpTarget): Promise<string> {
  const publish = await readJsonIfExists<{ title?: unknown; branch?: unknown }>(runFile(previousRoot, 'publish')).catch((err: unknown) => {
    expectSyntaxError(err);
    return undefined;
  });
  const summary = readPlainFile(runFile(previousRoot, 'lastMessage'), SUMMARY_MAX_BYTES);
  const quote = (text: string) => text.trim().split('\n').map((l) => `> ${l}`).join('\n');
  const lines = [
    `This continues earlier work (run ${followUp.previous_run}) on this branch${followUp.pr_url ? `, pull request ${followUp.pr_url}` : ''}.`,
  ];
  if (typeof publish?.title === 'string') lines.push('', 'Its title:', '', quote(publish.title));
  if (summary) lines.push('', 'What was done then, in the agent\'s words:', '', quote(summary.data.toString('utf8')));
  lines.push('', 'The new request:', '', '');
  return lines.join('\n');
}

/** One line for the run's log: which conversation the agent goes on with. */
export function describeContinuation(c: Continuation): string {
  return c.kind === 'resumed'
    ? `follow-up: resuming codex session ${c.sessionId} of run ${c.from}`
    : `follow-up: ${c.why}; starting a new codex session with the earlier work quoted`;
}
