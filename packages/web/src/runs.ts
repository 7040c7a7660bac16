import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  expectErrno,
  FINAL_RUN_STATES, isErrno, isInside, listRunIds, liveRunView, readRunStatus, requeuePrompt, RequeueError, RUN_FILES, runView,
  writeFileAtomic, type RunStatus, type RunView, type ValetConfig,
} from '@prompt-valet/core';
import { encodeJobId } from './jobs.js';
import { HttpError } from './http-error.js';

/** A run as the API shows it: the queue view, with paths relative to the valet's folders. */
export interface ApiRun extends Omit<RunView, 'run_root' | 'final_path'> {
  /** the settled prompt, relative to finished/ */
  final_rel?: string;
}

export function apiRun(v: RunView, config: ValetConfig): ApiRun {
  const { run_root: _root, final_path, ...rest } = v;
  const out: ApiRun = rest;
  if (final_path && isInside(config.finished, final_path)) out.final_rel = path.relative(config.finished, final_path);
  return out;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The run folder of `runId`, checked: a plain name, a folder directly in processed/, not a link. */
export async function runRoot(config: ValetConfig, runId: string): Promise<string> {
  if (!RUN_ID.test(runId) || runId.includes('..')) throw new HttpError(400, 'bad_run_id', 'not a run id');
  const root = path.join(config.processed, runId);
  try {
    if ((await fsp.lstat(root)).isDirectory()) return root;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  throw new HttpError(404, 'no_such_run', `no run ${runId}`);
}

async function statusOf(root: string): Promise<RunStatus> {
  const st = await readRunStatus(root).catch(() => undefined);
  if (!st) throw new HttpError(404, 'no_such_run', `no status for run ${path.basename(root)}`);
  return st;
}

export interface RunFilter {
  state?: string;
  /** `repo` or `owner/repo` */
  repo?: string;
  branch?: string;
  limit: number;
}

export async function listRuns(config: ValetConfig, filter: RunFilter, now = Date.now()): Promise<ApiRun[]> {
  const out: ApiRun[] = [];
  for (const id of await listRunIds(config.processed)) {
    if (out.length >= filter.limit) break;
    const root = path.join(config.processed, id);
    const st = await readRunStatus(root).catch(() => undefined);
    if (!st) continue;
    if (filter.state && st.state !== filter.state) continue;
    if (filter.repo && st.repo !== filter.repo && `${st.owner}/${st.repo}` !== filter.repo) continue;
    if (filter.branch && st.branch !== filter.branch) continue;
    const v = FINAL_RUN_STATES.has(st.state) ? runView(st, root, now) : await liveRunView(st, root, now);
    out.push(apiRun(v, config));
  }
  return out;
}

async function readSmall(file: string, max = 64 * 1024): Promise<string | undefined> {
  try {
    const fh = await fsp.open(file, 'r');
    try {
      const buf = Buffer.alloc(max);
      const { bytesRead } = await fh.read(buf, 0, max, 0);
      return buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return undefined;
  }
}

export interface RunDetail {
  run: ApiRun;
  status: RunStatus;
  /** which of the run folder's files exist */
  files: string[];
  prompt?: string;
  last_message?: string;
  error_text?: string;
  abort_requested: boolean;
}

export async function runDetail(config: ValetConfig, runId: string): Promise<RunDetail> {
  const root = await runRoot(config, runId);
  const status = await statusOf(root);
  const present = new Set(await fsp.readdir(root).catch(() => [] as string[]));
  const files = Object.values(RUN_FILES).filter((f) => present.has(f));
  const view = FINAL_RUN_STATES.has(status.state) ? runView(status, root, Date.now()) : await liveRunView(status, root, Date.now());
  const detail: RunDetail = { run: apiRun(view, config), status, files, abort_requested: present.has(RUN_FILES.abort) };
  const prompt = await readSmall(path.join(root, RUN_FILES.prompt));
  if (prompt !== undefined) detail.prompt = prompt;
  const last = await readSmall(path.join(root, RUN_FILES.lastMessage));
  if (last !== undefined) detail.last_message = last;
  const err = await readSmall(path.join(root, RUN_FILES.error));
  if (err !== undefined) detail.error_text = err;
  return detail;
}

/** The last `maxBytes` of the agent's log, from a line start. */
export async function logTail(config: ValetConfig, runId: string, maxBytes: number): Promise<{ text: string; size: number }> {
  const root = await runRoot(config, runId);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path.join(root, RUN_FILES.log), 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { text: '', size: 0 };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    let text = buf.toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    return { text, size };
  } finally {
    await fh.close();
  }
}

/** Stop a running run: create its ABORT file (pv-run-codex polls for it). */
export async function abortRun(config: ValetConfig, runId: string, now = new Date()): Promise<{ run_id: string; state: string }> {
  const root = await runRoot(config, runId);
  const st = await statusOf(root);
  if (FINAL_RUN_STATES.has(st.state)) throw new HttpError(409, 'not_running', `run ${runId} is ${st.state}, not running`);
  await writeFileAtomic(path.join(root, RUN_FILES.abort), `abort requested through pv-web at ${now.toISOString()}\n`);
  return { run_id: runId, state: st.state };
}

/** Put an errored run's prompt back to pending (core requeuePrompt); returns the job that follows it. */
export async function retryRun(config: ValetConfig, runId: string): Promise<{ job_id: string; prompt_rel: string }> {
  const root = await runRoot(config, runId);
  const st = await statusOf(root);
  if (st.state !== 'error') throw new HttpError(409, 'not_error', `run ${runId} is ${st.state}; only a run that ended in error can be retried`);
  if (!st.final_path || !isInside(config.finished, st.final_path)) {
    throw new HttpError(409, 'not_settled', `run ${runId} has no settled prompt in finished/`);
  }
  let dest: string;
  try {
    dest = await requeuePrompt({
      inbox: config.inbox, finished: config.finished, processed: config.processed, finishedRel: path.relative(config.finished, st.final_path),
    });
  } catch (err) {
    if (err instanceof RequeueError) throw new HttpError(409, 'retry_refused', err.message);
    throw err;
  }
  const { ino } = await fsp.lstat(dest);
  const promptRel = path.relative(config.inbox, dest);
  // The job starts at the errored run, so following it shows that run too.
  return { job_id: encodeJobId({ rel: promptRel, ino, at: Date.parse(st.created_at) }), prompt_rel: promptRel };
}
