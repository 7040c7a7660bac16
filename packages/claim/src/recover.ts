import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  applyFate,
  decideFate,
  holderLiveness,
  isErrno,
  listClaimRecords,
  moveToUniqueName,
  parsePromptName,
  pipelineHolder,
  PROMPT_SUFFIX,
  recordError,
  releaseToPending,
  removeClaimRecord,
  SCHEMA_VERSION,
  siblingName,
  writeClaimRecordExclusive,
  type ClaimRecord,
  type ClaimRecordFile,
  type Holder,
  type Logger,
  type PvRecord,
  type RecordError,
  type RetryPolicy,
} from '@prompt-valet/core';
import { listPending, type Candidate } from './candidates.js';

/**
 * Recovering claims whose holder is gone (docs/lifecycle.md). A running
 * file is recovered when every claim record naming it (path and inode) has
 * a dead holder, or when it has no record and its ctime is older than the
 * grace period. A live holder, or one on another host, is left alone.
 *
 * Recoverers may race (two watchers starting at once): before touching the
 * file, a recoverer takes the claim over by creating
 * `<run id>.takeover-<n>.json` exclusively, `n` one past the newest takeover
 * it saw. Exactly one wins; if it dies too, the next one uses `n + 1`.
 */
export interface RecoverOptions {
  inbox: string;
  processed: string;
  finished: string;
  policy: RetryPolicy;
  graceSeconds: number;
  dryRun?: boolean;
  log: Logger;
  holder?: Holder;
  now?: () => Date;
}

const TAKEOVER_RE = /\.takeover-(\d+)\.json$/;

export async function recoverClaims(opts: RecoverOptions): Promise<PvRecord[]> {
  const now = opts.now ?? (() => new Date());
  const running = await listPending(opts.inbox, PROMPT_SUFFIX.running);
  const records = await listClaimRecords(opts.processed);
  const out: PvRecord[] = [];
  const seen = new Set<string>();
  for (const file of running) {
    const matching = records.filter((r) => r.record.rel === file.rel && r.record.ino === file.ino);
    for (const r of matching) seen.add(r.file);
    try {
      const rec = await recoverOne(file, matching, opts, now);
      if (rec) out.push(rec);
    } catch (err) {
      // One claim that cannot be recovered must not keep the others stuck.
      opts.log.error(`cannot recover ${file.rel}: ${(err as Error).message}`);
    }
  }
  // Records for files that are not running (a crash before the link, or
  // after the file was settled): drop them once their holder is dead.
  for (const r of records) {
    if (seen.has(r.file) || holderLiveness(r.record.holder) !== 'dead') continue;
    if (opts.dryRun) continue;
    try {
      const moved = await finishStrandedSettle(r.record, opts);
      if (moved) out.push(moved);
    } catch (err) {
      opts.log.error(`cannot finish settling ${r.record.rel}: ${(err as Error).message}`);
      continue; // keep the record: the next recovery tries again
    }
    if (await removeClaimRecord(r.file)) opts.log.debug(`dropped the stale claim record ${path.basename(r.file)}`);
  }
  return out;
}

/**
 * pv-settle renames `x.running.md` to `x.done.md` (or `.error.md`) in place,
 * then moves it into finished/. A crash between the two leaves the settled
 * file in the inbox: find it by the claim's inode and finish the move.
 */
async function finishStrandedSettle(claim: ClaimRecord, opts: RecoverOptions): Promise<PvRecord | undefined> {
  const dirRel = path.dirname(claim.rel);
  const dir = path.join(opts.inbox, dirRel);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const state = parsePromptName(name)?.state;
    if (state !== 'done' && state !== 'error') continue;
    const src = path.join(dir, name);
    if (!(await sameInode(src, claim.ino))) continue;
    const dest = await moveToUniqueName(src, path.join(opts.finished, dirRel), PROMPT_SUFFIX[state]);
    opts.log.notice(`finished settling ${path.join(dirRel, name)} after a crash: ${path.relative(opts.finished, dest)}`);
    return {
      v: SCHEMA_VERSION,
      run_id: claim.run_id,
      settle: { state, path: dest, recovered: true },
    };
  }
  return undefined;
}

async function recoverOne(file: Candidate, matching: ClaimRecordFile[], opts: RecoverOptions, now: () => Date): Promise<PvRecord | undefined> {
  if (matching.some((r) => holderLiveness(r.record.holder) !== 'dead')) return undefined;
  if (matching.length === 0 && now().getTime() - file.changedMs < opts.graceSeconds * 1000) return undefined;

  const original = matching.find((r) => !r.record.takeover) ?? matching[matching.length - 1];
  const base: ClaimRecord = original?.record ?? {
    v: SCHEMA_VERSION,
    run_id: `orphan-${file.ino}`,
    rel: file.rel,
    prompt_rel: siblingName(file.rel, 'pending'),
    ino: file.ino,
    holder: { pid: 0, start_ticks: 0, boot_id: '', host: '' },
    // Nobody knows how far it got: it does not count as an attempt.
    attempt: 1,
    claimed_at: new Date(file.changedMs).toISOString(),
    run_root: '',
  };
  const dead = base.holder;
  const reason = original
    ? `the pipeline holding this prompt (process group ${dead.pgid ?? dead.pid}) died during attempt ${base.attempt}`
    : `${file.rel} had no claim record and has not changed for ${opts.graceSeconds} s`;
  if (opts.dryRun) {
    return { v: SCHEMA_VERSION, dry_run: true, run_id: base.run_id, recover: { rel: file.rel, reason } };
  }

  const gen = 1 + Math.max(0, ...matching.map((r) => Number(TAKEOVER_RE.exec(r.file)?.[1] ?? 0)));
  const mine = await writeClaimRecordExclusive(opts.processed, `${base.run_id}.takeover-${gen}.json`, {
    ...base,
    holder: opts.holder ?? pipelineHolder(),
    takeover: true,
  });
  if (!mine) return undefined; // another recoverer has it
  if (!(await stillDead(file, original, mine, opts))) {
    // Another recoverer finished it between our look and our takeover.
    await removeClaimRecord(mine);
    return undefined;
  }

  const runningPath = path.join(opts.inbox, file.rel);
  const promptPath = path.join(opts.inbox, base.prompt_rel);
  const record: PvRecord = {
    v: SCHEMA_VERSION,
    run_id: base.run_id,
    claim: {
      inbox: opts.inbox,
      rel: file.rel,
      path: runningPath,
      prompt_name: path.basename(base.prompt_rel),
      prompt_rel: base.prompt_rel,
      run_root: base.run_root,
      attempt: base.attempt,
      claimed_at: base.claimed_at,
      holder: dead,
      ino: file.ino,
    },
  };
  try {
    const error = recordError('claim', 'holder_died', reason, true);
    record.error = error;
    if (await sameInode(promptPath, file.ino)) {
      // Died between link and unlink: the prompt never left pending.
      await fsp.unlink(runningPath);
      record.settle = { state: 'pending', path: promptPath, attempts: base.attempt - 1 };
    } else if (!original) {
      const dest = await applyOrphan(file, opts, error);
      record.settle = { state: 'pending', path: dest, attempts: 0 };
    } else {
      record.settle = await applyFate(decideFate(error, base.attempt, opts.policy, undefined, now()), {
        inbox: opts.inbox,
        processed: opts.processed,
        finished: opts.finished,
        runningPath,
        ino: file.ino,
        runId: base.run_id,
        runRoot: base.run_root,
        attempt: base.attempt,
        claimedAt: base.claimed_at,
        step: 'claim',
        now: now(),
      });
    }
    opts.log.notice(`recovered ${file.rel} (${reason}): ${record.settle.state} at ${path.relative(opts.inbox, record.settle.path)}`);
    for (const r of matching) await removeClaimRecord(r.file);
  } finally {
    await removeClaimRecord(mine);
  }
  return record;
}

/** A running file the valet has no record of: back to pending, no run folder to update. */
async function applyOrphan(file: Candidate, opts: RecoverOptions, error: RecordError): Promise<string> {
  return releaseToPending({
    inbox: opts.inbox,
    processed: opts.processed,
    runningPath: path.join(opts.inbox, file.rel),
    ino: file.ino,
    attempts: 0,
    lastError: error,
  });
}

async function stillDead(file: Candidate, original: ClaimRecordFile | undefined, mine: string, opts: RecoverOptions): Promise<boolean> {
  if (!(await sameInode(path.join(opts.inbox, file.rel), file.ino))) return false;
  const now = (await listClaimRecords(opts.processed)).filter((r) => r.record.rel === file.rel && r.record.ino === file.ino && r.file !== mine);
  if (original && !now.some((r) => r.file === original.file)) return false;
  return now.every((r) => holderLiveness(r.record.holder) === 'dead');
}

async function sameInode(p: string, ino: number): Promise<boolean> {
  try {
    return (await fsp.lstat(p)).ino === ino;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
