import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ValetConfig } from './config.js';
import { listInboxPrompts } from './inbox-walk.js';
import { readRunStatus, RUN_FILES, type RunStatus } from './run-folder.js';
import { expectErrno } from './files.js';
import { totalTokens } from './token-totals.js';

/**
 * A read-only view of the queue, from the filesystem alone: the inbox for
 * pending and running prompts, processed/ for run folders. Nothing here
 * writes, locks or signals. pv-status prints it; pv-web serves it.
 */
export interface PendingPrompt {
  rel: string;
  size: number;
  mtime: string;
}

export interface RunView {
  run_id: string;
  state: string;
  prompt_rel: string;
  owner?: string;
  repo?: string;
  branch?: string;
  attempt: number;
  created_at: string;
  updated_at: string;
  age_seconds: number;
  pr_url?: string;
  outcome?: string;
  reason?: string;
  final_path?: string;
  last_log_line?: string;
  /** tokens the run's agent used (status.json usage) */
  tokens?: number;
  /** dispatch: nats — the worker host running (or that ran) the job */
  worker?: string;
  run_root: string;
}

export interface QueueView {
  v: number;
  generated_at: string;
  pending: PendingPrompt[];
  running: RunView[];
  recent: RunView[];
}

/** Run states after which nothing more happens to that run (a `retry` run's prompt gets a new run). */
export const FINAL_RUN_STATES: ReadonlySet<string> = new Set(['done', 'error', 'retry']);
const FINAL = new Set(['done', 'error']);

export async function lastLine(file: string, maxBytes = 8192): Promise<string | undefined> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(file, 'r');
    const { size } = await fh.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n').map((l) => l.trimEnd()).filter(Boolean);
    return lines.at(-1);
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return undefined;
  } finally {
    await fh?.close();
  }
}

export function runView(status: RunStatus, runRoot: string, now: number): RunView {
  const v: RunView = {
    run_id: status.run_id,
    state: status.state,
    prompt_rel: status.prompt_rel,
    attempt: status.attempt,
    created_at: status.created_at,
    updated_at: status.updated_at,
    age_seconds: Math.max(0, Math.round((now - Date.parse(status.created_at)) / 1000)),
    run_root: runRoot,
  };
  for (const k of ['owner', 'repo', 'branch', 'pr_url', 'outcome', 'final_path'] as const) {
    if (status[k]) v[k] = status[k];
  }
  if (status.error) v.reason = `${status.error.code}: ${status.error.message}`;
  if (status.usage) v.tokens = totalTokens(status.usage);
  if (typeof status.worker === 'string') v.worker = status.worker;
  return v;
}

/**
 * A run still going, as the views show it: its last log line and, when it
 * was dispatched (dispatch: nats), the worker its live log comes from.
 */
export async function liveRunView(status: RunStatus, runRoot: string, now: number): Promise<RunView> {
  const v = runView(status, runRoot, now);
  const line = await lastLine(path.join(runRoot, RUN_FILES.log));
  if (line) v.last_log_line = line;
  if (!v.worker && status.dispatch !== undefined) {
    const worker = await currentWorker(runRoot);
    if (worker) v.worker = worker;
  }
  return v;
}

export async function readQueue(config: ValetConfig, opts: { recent?: number; now?: Date } = {}): Promise<QueueView> {
  const now = (opts.now ?? new Date()).getTime();
  const pending = (await listInboxPrompts(config.inbox)).map((e) => ({ rel: e.rel, size: e.size, mtime: new Date(e.mtimeMs).toISOString() }));

  const runIds = await listRunIds(config.processed);
  const running: RunView[] = [];
  const recent: RunView[] = [];
  const wantRecent = opts.recent ?? 20;
  for (const id of runIds) {
    const root = path.join(config.processed, id);
    const status = await readRunStatus(root).catch(() => undefined);
    if (!status) continue;
    if (FINAL.has(status.state)) {
      if (recent.length < wantRecent) recent.push(runView(status, root, now));
    } else if (status.state !== 'retry') {
      running.push(await liveRunView(status, root, now));
    }
  }
  return { v: 1, generated_at: new Date(now).toISOString(), pending, running, recent };
}

/** The worker a dispatched run's live log last came from (pv-queue recv writes it). */
export async function currentWorker(runRoot: string): Promise<string | undefined> {
  try {
    const name = (await fsp.readFile(path.join(runRoot, RUN_FILES.worker), 'utf8')).trim();
    return isWorkerName(name) ? name : undefined;
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return undefined;
  }
}

/** A worker's name as pv-queue carries it: a host name or id, nothing a terminal or a path could misread. */
export function isWorkerName(name: string): boolean {
  return /^[\w.@-]{1,100}$/.test(name);
}

/** Run ids in processed/, newest first (run ids sort by time). */
export async function listRunIds(processed: string): Promise<string[]> {
  try {
    return (await fsp.readdir(processed, { withFileTypes: true }))
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort()
      .reverse();
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return [];
  }
}
