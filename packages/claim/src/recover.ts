import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  applyFate,
  claimLockPath,
  claimLocksDir,
  claimRecordPath,
  decideFate,
  firstReportOf,
  expectErrno,
  expectSyntaxError,
  isErrno,
  isPermissionError,
  isLockId,
  isRunId,
  listClaimRecords,
  listInboxPrompts,
  moveSettledToFinished,
  parsePromptName,
  permissionLine,
  PROMPT_SUFFIX,
  readJsonIfExists,
  runFile,
  updateRunStatus,
  writeReasonBeside,
  type SettleSection,
  recordError,
  releaseToPending,
  removeClaimRecord,
  runRootFor,
  SCHEMA_VERSION,
  siblingName,
  takeLock,
  type ClaimRecord,
  type Lock,
  type Logger,
  type PvRecord,
  type RetryPolicy,
} from '@prompt-valet/core';

/**
 * Recovering claims whose pipeline is gone (docs/lifecycle.md, "Recovery").
 * A claim is held by a flock the kernel drops when the last process of its
 * pipeline dies, so "is it dead?" is "can its lock be taken?". Taking the
 * lock also makes the recoverer the claim's only holder: of racing
 * recoverers exactly one gets it; the others find it busy and move on.
 */
export interface RecoverOptions {
  inbox: string;
  processed: string;
  finished: string;
  policy: RetryPolicy;
  graceSeconds: number;
  dryRun?: boolean;
  log: Logger;
  now?: () => Date;
}

/** Lock files that no record names and nobody holds are swept after this long. */
const LOCK_SWEEP_AGE_MS = 3_600_000;

/**
 * The lock that holds a record's claim. A record from before claim locks
 * (no liveness) gets a lock of its own name, so racing recoverers still
 * exclude each other over it.
 */
function lockIdOf(rec: ClaimRecord): string | undefined {
  const l = rec.liveness;
  if (!l) return `legacy-${rec.run_id}`;
  if (l.kind === 'local' && isLockId(l.lock)) return l.lock;
  return undefined; // dispatched (pv-queue reconciles it) or damaged
}

export async function recoverClaims(opts: RecoverOptions): Promise<PvRecord[]> {
  const now = opts.now ?? (() => new Date());
  // Records first, running files second: a claim made between the two looks
  // has a record and a fresh ctime, so it is never taken for an orphan.
  const records = await listClaimRecords(opts.processed);
  const running = await listInboxPrompts(opts.inbox, { suffix: PROMPT_SUFFIX.running });
  const out: PvRecord[] = [];
  // One lock may hold several claims (pv-claim without --limit): whoever
  // takes it recovers all of them, the others find it busy.
  const byLock = new Map<string, ClaimRecord[]>();
  for (const { record } of records) {
    const id = lockIdOf(record);
    if (id && isRunId(record.run_id)) byLock.set(id, [...(byLock.get(id) ?? []), record]);
  }
  for (const [lockId, claims] of byLock) {
    try {
      out.push(...(await recoverLock(lockId, claims, opts, now)));
    } catch (err) {
      // One lock that cannot be recovered must not keep the others stuck.
      opts.log.error(`cannot recover the claims of lock ${lockId}: ${(err as Error).message}`);
    }
  }
  const named = new Set(records.map((r) => `${r.record.rel}\0${r.record.ino}`));
  for (const file of running) {
    if (named.has(`${file.rel}\0${file.ino}`)) continue;
    if (now().getTime() - file.changedMs < opts.graceSeconds * 1000) continue;
    try {
      const rec = await recoverOrphan(file.rel, file.ino, opts);
      if (rec) out.push(rec);
    } catch (err) {
      await reportRecoveryProblem(opts, `cannot recover ${file.rel}: ${permissionLine(err) ?? (err as Error).message}`, err);
    }
  }
  if (!opts.dryRun) await sweepLockFiles(opts.processed, now());
  return out;
}

async function recoverLock(lockId: string, claims: ClaimRecord[], opts: RecoverOptions, now: () => Date): Promise<PvRecord[]> {
  const lockFile = claimLockPath(opts.processed, lockId);
  const lock = await takeLock(lockFile);
  if (!lock) return []; // held: its pipeline lives (or another recoverer has it)
  const out: PvRecord[] = [];
  try {
    for (const claim of claims) {
      try {
        // Someone may have settled or resumed it between our look and the lock.
        const recordFile = claimRecordPath(opts, claim.run_id);
        // Missing: settled meanwhile. A torn record is skipped like listClaimRecords skips it; a permission problem is reported below.
        const current = await readJsonIfExists<ClaimRecord>(recordFile).catch((err: unknown) => {
          expectSyntaxError(err);
          return undefined;
        });
        if (!current || lockIdOf(current) !== lockId || current.ino !== claim.ino) continue;
        const rec = await recoverHeldClaim(current, opts, now);
        if (rec) out.push(rec);
        // Last: until it is gone no claimer resumes the run put back to pending.
        if (!opts.dryRun) await removeClaimRecord(recordFile);
      } catch (err) {
        await reportRecoveryProblem(opts, `cannot recover run ${claim.run_id} (${claim.rel}): ${permissionLine(err) ?? (err as Error).message}`, err);
      }
    }
    // The file goes with the last record naming it; otherwise two holders
    // could lock two different files of one name.
    if (!opts.dryRun && !(await listClaimRecords(opts.processed)).some((r) => lockIdOf(r.record) === lockId)) {
      await fsp.rm(lockFile, { force: true });
    }
  } finally {
    await lock.release();
  }
  return out;
}

/** A permission problem is retried at every recovery: say it once (the ledger remembers), anything else every time. */
async function reportRecoveryProblem(opts: RecoverOptions, line: string, err: unknown): Promise<void> {
  if (!isPermissionError(err) || (await firstReportOf(opts.processed, line))) opts.log.error(line);
  else opts.log.debug(line);
}

async function sameInode(p: string, ino: number): Promise<boolean> {
  try {
    return (await fsp.lstat(p)).ino === ino;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** What is on disk decides (docs/lifecycle.md, "Recovery", step 3). Called holding the claim's lock. */
async function recoverHeldClaim(claim: ClaimRecord, opts: RecoverOptions, now: () => Date): Promise<PvRecord | undefined> {
  const runningPath = path.join(opts.inbox, claim.rel);
  const promptPath = path.join(opts.inbox, claim.prompt_rel);
  // Died between writing the record and the move: the prompt never left pending.
  if (await sameInode(promptPath, claim.ino)) return undefined;
  const runRoot = runRootFor(opts, claim.run_id);
  const base: PvRecord = {
    v: SCHEMA_VERSION,
    run_id: claim.run_id,
    claim: {
      inbox: opts.inbox,
      rel: claim.rel,
      path: runningPath,
      prompt_name: path.basename(claim.prompt_rel),
      prompt_rel: claim.prompt_rel,
      run_root: runRoot,
      attempt: claim.attempt,
      claimed_at: claim.claimed_at,
      ino: claim.ino,
      ...(claim.liveness ? { liveness: claim.liveness } : {}),
    },
  };
  if (await sameInode(runningPath, claim.ino)) {
    const reason = `the pipeline holding this prompt died during attempt ${claim.attempt} (its claim lock was free)`;
    if (opts.dryRun) return { ...base, dry_run: true, recover: { rel: claim.rel, reason } };
    const error = recordError('claim', 'holder_died', reason, true);
    const settle = await applyFate(decideFate(error, claim.attempt, opts.policy, undefined, now()), {
      inbox: opts.inbox,
      processed: opts.processed,
      finished: opts.finished,
      runningPath,
      ino: claim.ino,
      runId: claim.run_id,
      runRoot,
      attempt: claim.attempt,
      claimedAt: claim.claimed_at,
      step: 'claim',
      now: now(),
    });
    opts.log.notice(`recovered ${claim.rel} (${reason}): ${settle.state} at ${path.relative(settle.state === 'error' ? opts.finished : opts.inbox, settle.path)}`);
    return { ...base, error, settle };
  }
  // Died between the two moves of settle: x.done.md / x.error.md in the inbox.
  const dirRel = path.dirname(claim.rel);
  const stem = parsePromptName(path.basename(claim.rel))?.stem;
  let names: string[] = [];
  try {
    names = await fsp.readdir(path.join(opts.inbox, dirRel));
  } catch {
    // the folder is gone: nothing stranded
  }
  for (const name of names) {
    const parsed = parsePromptName(name);
    if (!parsed || (parsed.state !== 'done' && parsed.state !== 'error') || !stem || !parsed.stem.startsWith(stem)) continue;
    const src = path.join(opts.inbox, dirRel, name);
    if (!(await sameInode(src, claim.ino))) continue;
    if (opts.dryRun) return { ...base, dry_run: true, recover: { rel: claim.rel, reason: `settle stopped between its moves: ${name}` } };
    const dest = await moveSettledToFinished(src, path.join(opts.finished, dirRel));
    opts.log.notice(`finished settling ${path.join(dirRel, name)} after a crash: ${path.relative(opts.finished, dest)}`);
    // settle had not recorded its outcome yet (it does after the second move): record it now,
    // and for an error put the reason (the run's error.md) beside the prompt, as settle would have.
    const settle: SettleSection = { state: parsed.state, path: dest, recovered: true, settled_at: now().toISOString() };
    if (parsed.state === 'error') {
      const reason = await fsp.readFile(runFile(runRoot, 'error'), 'utf8').catch((err: unknown) => {
        expectErrno(err, 'ENOENT'); // settle writes it first; a run that has none gets none beside it
        return undefined;
      });
      if (reason !== undefined) settle.reason_path = await writeReasonBeside(dest, reason);
    }
    await updateRunStatus(runRoot, { state: parsed.state, step: 'claim', settle, final_path: dest }, now());
    return { ...base, settle };
  }
  return undefined; // already in finished/, or gone: only the record is left
}

/** A running file no record names (made outside the valet, or a torn ledger): back to pending, not counted. */
async function recoverOrphan(rel: string, ino: number, opts: RecoverOptions): Promise<PvRecord | undefined> {
  const reason = `${rel} had no claim record and has not changed for ${opts.graceSeconds} s`;
  if (opts.dryRun) return { v: SCHEMA_VERSION, dry_run: true, recover: { rel, reason } };
  const runningPath = path.join(opts.inbox, rel);
  const error = recordError('claim', 'holder_died', reason, true);
  let dest: string;
  try {
    dest = await releaseToPending({ inbox: opts.inbox, processed: opts.processed, runningPath, ino, attempts: 0, lastError: error });
  } catch (err) {
    if (!(await sameInode(runningPath, ino))) return undefined; // another recoverer moved it first
    throw err;
  }
  opts.log.notice(`recovered ${rel} (${reason}): pending at ${path.relative(opts.inbox, dest)}`);
  return { v: SCHEMA_VERSION, error, settle: { state: 'pending', path: dest, attempts: 0 }, recover: { rel, prompt_rel: siblingName(rel, 'pending') } };
}

/** Lock files older than an hour that no record names and nobody holds. */
async function sweepLockFiles(processed: string, now: Date): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(claimLocksDir(processed));
  } catch {
    return;
  }
  const named = new Set((await listClaimRecords(processed)).map((r) => lockIdOf(r.record)));
  for (const name of names) {
    const id = name.replace(/\.lock$/, '');
    if (!name.endsWith('.lock') || !isLockId(id) || named.has(id)) continue;
    const file = claimLockPath(processed, id);
    const st = await fsp.stat(file).catch((err: unknown) => {
      expectErrno(err, 'ENOENT'); // removed by its watcher meanwhile
      return undefined;
    });
    if (!st || now.getTime() - st.mtimeMs < LOCK_SWEEP_AGE_MS) continue;
    let lock: Lock | undefined;
    try {
      lock = await takeLock(file);
      if (lock) await fsp.rm(file, { force: true });
    } finally {
      await lock?.release();
    }
  }
}
