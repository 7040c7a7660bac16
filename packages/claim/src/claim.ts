import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  isErrno,
  newRunId,
  pipelineHolder,
  readPendingEntry,
  recordError,
  removeClaimRecord,
  removePendingEntry,
  runFile,
  SCHEMA_VERSION,
  siblingName,
  updateRunStatus,
  writeClaimRecord,
  writeFileAtomic,
  type ClaimRecord,
  type ClaimSection,
  type Holder,
  type PendingEntry,
  type PvRecord,
} from '@prompt-valet/core';
import type { Candidate } from './candidates.js';

/**
 * Claiming one prompt (docs/lifecycle.md). The order is what makes a crash
 * at any instant recoverable:
 *
 *   1. write the claim record (holder, inode) into processed/.ledger/claims
 *   2. link x.prompt.md → x.running.md   exclusive: EEXIST means someone
 *                                        else holds x (or another x runs)
 *   3. unlink x.prompt.md
 *   4. drop the pending entry, make the run folder, copy the prompt, status
 *
 * A crash after 1 leaves a record for a file that never became running
 * (swept by --recover); after 2 both names of one inode (recover unlinks
 * the running name); after 3 a running file with a dead holder (recovered).
 */
export interface ClaimOptions {
  inbox: string;
  processed: string;
  holder?: Holder;
  now?: () => Date;
}

export type ClaimOutcome =
  | { claimed: true; record: PvRecord }
  /** lost the race, or the file went away, or it waits for its backoff */
  | { claimed: false; why: 'taken' | 'gone' | 'backoff' };

export async function claimPrompt(c: Candidate, pending: PendingEntry | undefined, opts: ClaimOptions): Promise<ClaimOutcome> {
  const now = opts.now ?? (() => new Date());
  if (pending?.not_before && Date.parse(pending.not_before) > now().getTime()) return { claimed: false, why: 'backoff' };
  const runId = newRunId(now());
  const runRoot = path.join(opts.processed, runId);
  const runningRel = siblingName(c.rel, 'running');
  const runningPath = path.join(opts.inbox, runningRel);
  const attempt = (pending?.attempts ?? 0) + 1;
  const claimedAt = now().toISOString();
  const holder = opts.holder ?? pipelineHolder();
  const rec: ClaimRecord = {
    v: SCHEMA_VERSION,
    run_id: runId,
    rel: runningRel,
    prompt_rel: c.rel,
    ino: c.ino,
    holder,
    attempt,
    claimed_at: claimedAt,
    run_root: runRoot,
  };
  const ledgerFile = await writeClaimRecord(opts.processed, rec);

  try {
    await fsp.link(c.path, runningPath);
  } catch (err) {
    await removeClaimRecord(ledgerFile);
    if (isErrno(err, 'EEXIST')) return { claimed: false, why: 'taken' };
    if (isErrno(err, 'ENOENT')) return { claimed: false, why: 'gone' };
    throw err;
  }
  // Replaced between our lstat and the link (a new upload at the same name):
  // give the name back and let a later pass look at the new file.
  const st = await fsp.lstat(runningPath);
  if (st.ino !== c.ino) {
    await fsp.unlink(runningPath);
    await removeClaimRecord(ledgerFile);
    return { claimed: false, why: 'gone' };
  }
  await fsp.unlink(c.path);
  await removePendingEntry(opts.processed, c.rel);

  const claim: ClaimSection = {
    inbox: opts.inbox,
    rel: runningRel,
    path: runningPath,
    prompt_name: path.basename(c.rel),
    prompt_rel: c.rel,
    run_root: runRoot,
    attempt,
    claimed_at: claimedAt,
    holder,
    ino: c.ino,
    ledger: ledgerFile,
  };
  const record: PvRecord = { v: SCHEMA_VERSION, run_id: runId, claim };

  try {
    await fsp.mkdir(runRoot);
    if (c.kind === 'file') await copyPrompt(runningPath, runFile(runRoot, 'prompt'));
    await updateRunStatus(runRoot, { state: 'claimed', prompt_rel: c.rel, attempt, step: 'claim', claimed_at: claimedAt });
  } catch (err) {
    // The claim stands (the file is ours); settle puts it back to pending.
    record.error = recordError('claim', 'run_folder_failed', `cannot set up the run folder ${runRoot}: ${(err as Error).message}`, true);
    return { claimed: true, record };
  }
  if (c.kind !== 'file') {
    const what = c.kind === 'symlink' ? 'a symbolic link' : 'not a regular file';
    record.error = recordError('claim', c.kind === 'symlink' ? 'symlink_refused' : 'not_regular_file',
      `${c.rel} is ${what}; prompts must be plain files inside the inbox (not read, not followed)`, false);
  }
  return { claimed: true, record };
}

/** Copy without following a symlink (the name is ours, but be certain). */
async function copyPrompt(src: string, dest: string): Promise<void> {
  const fh = await fsp.open(src, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let data: Buffer;
  try {
    data = await fh.readFile();
  } finally {
    await fh.close();
  }
  await writeFileAtomic(dest, data);
}

export async function pendingFor(processed: string, c: Candidate): Promise<PendingEntry | undefined> {
  return readPendingEntry(processed, c.rel, c.ino);
}
