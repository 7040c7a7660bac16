import {
  claimRecordPath,
  readJsonIfExists,
  readPromptText,
  recordRunId,
  runFile,
  runRootFor,
  StepError,
  updateRunStatus,
  writeClaimRecord,
  type ClaimRecord,
  type Liveness,
  type Logger,
  type PvRecord,
  type ValetConfig,
} from '@prompt-valet/core';
import { encodeMessage, jobMessageId, type JobMessage } from './envelopes.js';
import { subjectFor, type QueueConnection } from './queue-connection.js';

export interface DispatchSection {
  stream: string;
  seq: number;
  subject: string;
  /** the stream already had this dispatch (a resend): nothing new was queued */
  duplicate: boolean;
}

/**
 * Hand one claimed, resolved record to the jobs stream and mark its claim
 * `dispatched` (docs/lifecycle.md, "Liveness kinds"): from then on the job in
 * the stream, not this host's claim lock, keeps the claim alive, and local
 * recovery leaves it alone. The message id is the run id with the attempt and
 * resume count, so sending the same dispatch again is dropped by the stream
 * while a new try of the run is a new job.
 */
export async function dispatchRecord(
  rec: PvRecord,
  config: ValetConfig,
  q: QueueConnection,
  stem: string,
  log: Logger,
): Promise<DispatchSection> {
  const runId = recordRunId(rec);
  const runRoot = runRootFor(config, runId);
  const claimFile = claimRecordPath(config, runId);
  const claim = await readJsonIfExists<ClaimRecord>(claimFile);
  if (!claim || claim.run_id !== runId) {
    throw new StepError('not_claimed', `run ${runId} has no claim record in ${claimFile}: nothing to dispatch`);
  }
  if (rec.claim?.rel !== claim.rel) {
    throw new StepError('foreign_claim', `claim.rel ${JSON.stringify(rec.claim?.rel)} is not the claim's ${claim.rel}`);
  }
  const prompt = await readPromptText(runFile(runRoot, 'prompt'), config.limits.max_prompt_bytes);
  const resumed = claim.resumed ?? 0;
  const job: JobMessage = { v: 1, kind: 'pv-job', run_id: runId, attempt: claim.attempt, resumed, record: rec, prompt };
  const subject = subjectFor(stem, runId);
  let ack;
  try {
    ack = await q.js.publish(subject, encodeMessage(job), { msgID: jobMessageId(runId, claim.attempt, resumed) });
  } catch (err) {
    // 503 "no responders": no stream takes the subject yet (pv-queue recv makes it when it starts).
    const hint = /503|no responders/i.test((err as Error).message) ? ` (no stream takes ${stem}.*: is pv-queue recv running on this host?)` : '';
    throw new StepError('queue_unreachable', `could not queue run ${runId} on ${subject}: ${(err as Error).message}${hint}`, { retryable: true });
  }
  const liveness: Liveness = { kind: 'dispatched', stream: ack.stream, seq: ack.seq };
  // The claim record is rewritten under the claim lock this pipeline still holds.
  await writeClaimRecord(config.processed, { ...claim, liveness });
  const section: DispatchSection = { stream: ack.stream, seq: ack.seq, subject, duplicate: ack.duplicate };
  await updateRunStatus(runRoot, { dispatch: { ...section, at: new Date().toISOString() } });
  log.info(`${claim.prompt_rel}: dispatched as ${ack.stream} #${ack.seq}${ack.duplicate ? ' (already queued)' : ''}`);
  return section;
}
