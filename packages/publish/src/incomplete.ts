import {
  INCOMPLETE_REASONS, stepErrorToRecord, type IncompleteWork, type PvRecord, type RecordError,
} from '@prompt-valet/core';
import { publishRun, type PublishContext } from './publish-step.js';

/**
 * No lost work: a run the agent did not finish — stopped by its time or
 * idle limit, its token cap, or the operator's abort (pv-run-codex marks its
 * error with `incomplete`) — has its work committed and pushed to the agent
 * branch and a draft PR labelled prompt-valet:incomplete opened, by the very
 * same publish as a finished run (secret scan, hardened git, no symlink
 * followed, idempotent on resume). The agent's error stays the record's
 * error, now linking the draft PR, so the prompt settles as an error. A
 * shutdown is no such stop: that run goes back to pending and resumes.
 *
 * Keeping the work never runs the agent again: pv-run-codex recorded the
 * stop (steps/run-codex-stopped.json), so a resumed run re-emits it and
 * only the publish is retried. A failure worth retrying (GitHub down, a
 * push refused) is therefore the record's error, retryable, with the
 * agent's as its cause; any other (a secret in the diff) keeps the agent's
 * error, which says so, and the work stays in the run's checkout.
 */
export function incompleteWorkOf(rec: PvRecord): IncompleteWork | undefined {
  const work = rec.error?.incomplete;
  if (rec.error?.step !== 'run-codex' || !work) return undefined;
  return (INCOMPLETE_REASONS as readonly string[]).includes(work.reason) ? work : undefined;
}

export async function publishIncompleteWork(rec: PvRecord, ctx: PublishContext): Promise<PvRecord> {
  const agentError = rec.error!;
  const work = incompleteWorkOf(rec)!;
  if (!ctx.config.watcher.keep_incomplete_work) {
    return withWork(rec, agentError, { ...work, not_kept: 'watcher.keep_incomplete_work is false; the work stays in the run\'s checkout' });
  }
  const { error: _agentError, ...unfailed } = rec;
  let published: PvRecord;
  try {
    published = await publishRun(unfailed, { ...ctx, incomplete: work.reason });
  } catch (err) {
    const failed = stepErrorToRecord('publish', err, ctx.log);
    ctx.log.warn(`run ${rec.run_id ?? '?'}: the stopped agent's work was not kept (${failed.code}${failed.retryable ? ', tried again later' : ''}): ${failed.message}`);
    const notKept: IncompleteWork = { ...work, not_kept: `${failed.code}: ${failed.message}; the work stays in the run's checkout` };
    if (failed.retryable) return { ...rec, error: { ...failed, cause: agentError, incomplete: notKept } };
    return withWork(rec, agentError, notKept);
  }
  const section = published.publish!;
  if (section.outcome === 'no_changes') {
    return withWork({ ...published, publish: { ...section, incomplete: true } }, agentError, { ...work, not_kept: 'the agent changed nothing' });
  }
  const kept: IncompleteWork = { ...work, branch: section.branch };
  if (section.commit) kept.commit = section.commit;
  if (section.pr_url) kept.pr_url = section.pr_url;
  ctx.log.info(`run ${rec.run_id ?? '?'}: the stopped agent's work is on ${section.branch}${section.pr_url ? ` and in draft ${section.pr_url}` : ''}`);
  return withWork({ ...published, publish: { ...section, incomplete: true } }, agentError, kept);
}

/** The agent's error, naming where its work went (or why it went nowhere). */
function withWork(rec: PvRecord, agentError: RecordError, work: IncompleteWork): PvRecord {
  const where = work.pr_url
    ? `its work so far is in draft pull request ${work.pr_url}`
    : work.branch
      ? `its work so far is pushed to ${work.branch}`
      : `its work was not kept: ${work.not_kept ?? 'unknown'}`;
  return { ...rec, error: { ...agentError, message: `${agentError.message}; ${where}`, incomplete: work } };
}
