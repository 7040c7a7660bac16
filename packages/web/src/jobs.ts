import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  expectErrno, expectSyntaxError,
  checkRelativePath, isInside, listClaimRecords, listRetryEntries, listRunIds, readRunStatus,
  type RunStatus, type ValetConfig,
} from '@prompt-valet/core';
import { HttpError } from './http-error.js';

/**
 * A job is one submitted prompt file, followed through all its runs. Its id
 * names the file as submitted (path relative to the inbox, inode, time);
 * nothing is stored for it. The inode is the file's identity: every move of
 * a prompt (claim, release, settle, retry) is a link and an unlink, so the
 * same inode is found in the claim records (running), the retry entries
 * (waiting for a retry) and at a settled run's `final_path` (done, error).
 */
export interface JobRef {
  rel: string;
  ino: number;
  /** milliseconds since the epoch, when submitted: runs older than that are not this job's */
  at: number;
}

export function encodeJobId(ref: JobRef): string {
  return Buffer.from(JSON.stringify([ref.rel, ref.ino, ref.at])).toString('base64url');
}

export function decodeJobId(id: string): JobRef {
  const bad = () => new HttpError(400, 'bad_job_id', 'not a job id');
  if (id.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(id)) throw bad();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(id, 'base64url').toString('utf8'));
  } catch (err) {
    expectSyntaxError(err);
    throw bad();
  }
  if (!Array.isArray(v) || v.length !== 3) throw bad();
  const [rel, ino, at] = v as unknown[];
  if (typeof rel !== 'string' || !checkRelativePath(rel).ok || typeof ino !== 'number' || typeof at !== 'number') throw bad();
  return { rel, ino, at };
}

export interface JobView {
  job_id: string;
  prompt_rel: string;
  /** `pending` until claimed; then the state of its latest run (`retry` reads as `pending` again) */
  state: string;
  /** the latest run, once there is one */
  run_id?: string;
  /** every run of this prompt, oldest first */
  run_ids: string[];
  pr_url?: string;
}

/** Slack for the clock: a run id and a submit time come from different processes. */
const CLOCK_SLACK_MS = 2000;

async function inodeAt(p: string | undefined): Promise<number | undefined> {
  if (!p) return undefined;
  try {
    return (await fsp.lstat(p)).ino;
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return undefined;
  }
}

export async function resolveJob(config: ValetConfig, id: string): Promise<JobView> {
  const ref = decodeJobId(id);
  const folder = path.dirname(ref.rel);
  const claimed = new Map((await listClaimRecords(config.processed)).map((c) => [c.record.run_id, c.record]));
  const retried = new Map((await listRetryEntries(config.processed)).filter((e) => e.last_run_id).map((e) => [e.last_run_id!, e]));
  const runs: RunStatus[] = [];
  for (const runId of await listRunIds(config.processed)) {
    const st = await readRunStatus(path.join(config.processed, runId)).catch(() => undefined);
    if (!st) continue;
    const created = Date.parse(st.created_at);
    // Run ids sort by time, newest first: stop at the first run older than the job.
    if (created < ref.at - CLOCK_SLACK_MS) break;
    if (path.dirname(st.prompt_rel) !== folder) continue;
    const claim = claimed.get(runId);
    const pending = retried.get(runId);
    const finalPath = st.final_path && isInside(config.finished, st.final_path) ? st.final_path : undefined;
    const settledIno = claim || pending ? undefined : await inodeAt(finalPath);
    const mine =
      claim ? claim.ino === ref.ino
      : pending ? pending.ino === ref.ino
      : settledIno !== undefined ? settledIno === ref.ino
      // No evidence left (the settled file was put back by a retry, or moved away): the name decides.
      : st.prompt_rel === ref.rel;
    if (mine) runs.push(st);
  }
  runs.reverse();
  const view: JobView = { job_id: id, prompt_rel: ref.rel, state: 'pending', run_ids: runs.map((r) => r.run_id) };
  const latest = runs.at(-1);
  if (!latest) {
    if ((await inodeAt(path.join(config.inbox, ref.rel))) !== ref.ino) view.state = 'unknown';
    return view;
  }
  view.run_id = latest.run_id;
  view.state = latest.state === 'retry' ? 'pending' : latest.state;
  if (latest.pr_url) view.pr_url = latest.pr_url;
  // An error run whose prompt was put back (retry from the page) is pending again.
  if (latest.state === 'error' && (await inboxHasInode(config, folder, ref.ino))) view.state = 'pending';
  return view;
}

async function inboxHasInode(config: ValetConfig, folder: string, ino: number): Promise<boolean> {
  try {
    for (const name of await fsp.readdir(path.join(config.inbox, folder))) {
      if (name.endsWith('.prompt.md') && (await inodeAt(path.join(config.inbox, folder, name))) === ino) return true;
    }
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return false;
  }
  return false;
}
