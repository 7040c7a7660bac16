import * as fsp from 'node:fs/promises';
import {
  applyFate,
  claimRecordPath,
  decideFate,
  expectPath,
  isErrno,
  readRunStatusOrNone,
  recordRunId,
  removeClaimRecord,
  runningFileFor,
  runRootFor,
  StepError,
  type PvRecord,
  type RetryPolicy,
  type SettleSection,
  type ValetConfig,
} from '@prompt-valet/core';

/**
 * Settling one record: the prompt's fate from its `error` (docs/lifecycle.md).
 * A retry (and aborted_shutdown) hands the run on: the retry entry names
 * it as `resume_run_id`, so the next claim continues it instead of redoing it.
 * Only the file the claim names, with the claim's inode, is moved; a record
 * replayed after its prompt was settled finds the settle section in the
 * run's status and changes nothing (idempotent).
 */
export async function settleRecord(rec: PvRecord, config: ValetConfig, policy: RetryPolicy): Promise<PvRecord> {
  const claim = rec.claim;
  if (!claim) throw new StepError('not_claimed', 'record has no claim section: nothing to settle');
  // Every path comes from the configuration and validated ids; the record's
  // own copies must agree (docs/lifecycle.md, "Paths come from the configuration").
  const runId = recordRunId(rec);
  const runningPath = await runningFileFor(config, claim.rel);
  const runRoot = runRootFor(config, runId);
  const ledger = claimRecordPath(config, runId);
  expectPath('claim.inbox', claim.inbox, config.inbox);
  expectPath('claim.path', claim.path, runningPath);
  expectPath('claim.run_root', claim.run_root, runRoot);
  expectPath('claim.ledger', claim.ledger, ledger);
  const ino = typeof claim.ino === 'number' ? claim.ino : undefined;

  const held = await holds(runningPath, ino);
  if (!held) {
    const status = await readRunStatusOrNone(runRoot);
    const prior = status?.settle as SettleSection | undefined;
    if (prior) return { ...rec, settle: { ...prior, already: true } };
    throw new StepError('claim_missing', `${runningPath} is gone and run ${runId} was never settled; was it recovered by pv-claim --recover?`);
  }

  const fate = decideFate(rec.error, claim.attempt ?? 1, policy, rec.publish?.outcome);
  const settle = await applyFate(fate, {
    inbox: config.inbox,
    processed: config.processed,
    finished: config.finished,
    runningPath,
    ino: held.ino,
    runId,
    runRoot,
    attempt: claim.attempt ?? 1,
    claimedAt: claim.claimed_at,
    step: 'settle',
    ...(rec.publish ? { publish: rec.publish } : {}),
  });
  // Last: while it stands no claimer resumes the run, so a retry's prompt is not taken
  // again before this claim has let go of it (docs/lifecycle.md, "Handing a run on").
  await removeClaimRecord(ledger);
  const out: PvRecord = { ...rec, settle };
  // A prompt that gave up carries the final message (with the attempt count).
  if (fate.state === 'error' && rec.error) out.error = fate.error;
  return out;
}

async function holds(p: string, ino: number | undefined): Promise<{ ino: number } | undefined> {
  try {
    const st = await fsp.lstat(p);
    if (ino !== undefined && st.ino !== ino) return undefined;
    return { ino: st.ino };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}
