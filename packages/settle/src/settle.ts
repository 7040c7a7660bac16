import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  applyFate,
  claimRecordFile,
  decideFate,
  isErrno,
  readRunStatus,
  removeClaimRecord,
  StepError,
  type PvRecord,
  type RetryPolicy,
  type SettleSection,
  type ValetConfig,
} from '@prompt-valet/core';

/**
 * Settling one record: the prompt's fate from its `error` (docs/lifecycle.md).
 * Only the file the claim names, with the claim's inode, is moved; a record
 * replayed after its prompt was settled finds the settle section in the
 * run's status and changes nothing (idempotent).
 */
export async function settleRecord(rec: PvRecord, config: ValetConfig, policy: RetryPolicy): Promise<PvRecord> {
  const claim = rec.claim;
  if (!claim || typeof claim.path !== 'string' || typeof claim.run_root !== 'string' || !rec.run_id) {
    throw new StepError('not_claimed', 'record has no claim section (run_id, claim.path, claim.run_root): nothing to settle');
  }
  const inbox = claim.inbox;
  const runningPath = claim.path;
  // Never act on a path the record merely asserts: it must be a running
  // file inside the inbox the configuration names.
  if (path.resolve(inbox) !== path.resolve(config.inbox) || path.relative(inbox, runningPath).startsWith('..') || !runningPath.endsWith('.running.md')) {
    throw new StepError('foreign_claim', `claim.path ${runningPath} is not a running prompt inside the inbox ${config.inbox}`);
  }
  if (path.dirname(path.resolve(claim.run_root)) !== path.resolve(config.processed)) {
    throw new StepError('foreign_claim', `claim.run_root ${claim.run_root} is not a run folder in ${config.processed}`);
  }
  const ino = typeof claim.ino === 'number' ? claim.ino : undefined;

  const held = await holds(runningPath, ino);
  if (!held) {
    const status = await readRunStatus(claim.run_root).catch(() => undefined);
    const prior = status?.settle as SettleSection | undefined;
    if (prior) return { ...rec, settle: { ...prior, already: true } };
    throw new StepError('claim_missing', `${runningPath} is gone and run ${rec.run_id} was never settled; was it recovered by pv-claim --recover?`);
  }

  const fate = decideFate(rec.error, claim.attempt ?? 1, policy, rec.publish?.outcome);
  const settle = await applyFate(fate, {
    inbox,
    processed: config.processed,
    finished: config.finished,
    runningPath,
    ino: held.ino,
    runId: rec.run_id,
    runRoot: claim.run_root,
    attempt: claim.attempt ?? 1,
    claimedAt: claim.claimed_at,
    step: 'settle',
    ...(rec.publish ? { publish: rec.publish } : {}),
  });
  const ledger = typeof claim.ledger === 'string' ? claim.ledger : claimRecordFile(config.processed, rec.run_id);
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
