import * as path from 'node:path';
import { writeFileAtomic } from './files.js';
import { backoffSeconds, releaseToPending, settlePromptFile } from './prompt-ledger.js';
import { INCOMPLETE_LABEL, type PublishSection, type RecordError, type SettleSection } from './records.js';

type PublishOutcome = PublishSection['outcome'];
import { runFile, updateRunStatus, type RunState } from './run-folder.js';

/**
 * What becomes of a claimed prompt, and doing it. pv-settle decides from a
 * record's `error`; pv-claim --recover for a claim whose lock was free. Both use these two
 * functions so a prompt's fate follows one rule (docs/lifecycle.md).
 */
export type Fate =
  | { state: 'done'; outcome?: PublishOutcome }
  | { state: 'error'; error: RecordError }
  /** back to pending; `attempts` is how many attempts count so far */
  | { state: 'pending'; error: RecordError; attempts: number; notBefore?: Date };

/** Raised by pv-watcher's shutdown: not the prompt's fault, so it does not count as an attempt. */
export const ABORTED_SHUTDOWN = 'aborted_shutdown';

export interface RetryPolicy {
  max_attempts: number;
  retry_backoff_seconds: number;
}

export function decideFate(error: RecordError | undefined, attempt: number, policy: RetryPolicy, outcome?: PublishOutcome, now = new Date()): Fate {
  if (!error) return outcome === undefined ? { state: 'done' } : { state: 'done', outcome };
  if (error.code === ABORTED_SHUTDOWN) return { state: 'pending', error, attempts: Math.max(0, attempt - 1) };
  if (!error.retryable) return { state: 'error', error };
  if (attempt >= policy.max_attempts) {
    return {
      state: 'error',
      error: { ...error, message: `gave up after ${attempt} of ${policy.max_attempts} attempts: ${error.message}` },
    };
  }
  const wait = backoffSeconds(attempt, policy.retry_backoff_seconds);
  return { state: 'pending', error, attempts: attempt, notBefore: new Date(now.getTime() + wait * 1000) };
}

export interface ApplyFateOptions {
  inbox: string;
  processed: string;
  finished: string;
  /** absolute path of `x.running.md` (held by the caller) */
  runningPath: string;
  ino: number;
  runId: string;
  runRoot: string;
  attempt: number;
  claimedAt?: string;
  publish?: PublishSection;
  /** which tool settles (history) */
  step: string;
  now?: Date;
}

/**
 * Move the prompt file, update the run's status, write error.md; returns the record's `settle` section.
 * Back to pending, no claimer resumes the run before the caller removes its claim record, after this
 * (docs/lifecycle.md, "Handing a run on"), so the status written here is never over a new claim's.
 */
export async function applyFate(fate: Fate, opts: ApplyFateOptions): Promise<SettleSection> {
  const now = opts.now ?? new Date();
  const durations = opts.claimedAt ? { total: Math.max(0, now.getTime() - Date.parse(opts.claimedAt)) } : undefined;
  let settle: SettleSection;
  let runState: RunState;
  if (fate.state === 'pending') {
    const dest = await releaseToPending({
      inbox: opts.inbox,
      processed: opts.processed,
      runningPath: opts.runningPath,
      ino: opts.ino,
      attempts: fate.attempts,
      lastError: fate.error,
      runId: opts.runId,
      // The next claim continues this run: completed steps are not redone.
      resumeRunId: opts.runId,
      now,
      ...(fate.notBefore ? { notBefore: fate.notBefore } : {}),
    });
    settle = { state: 'pending', path: dest, attempts: fate.attempts, ...(fate.notBefore ? { not_before: fate.notBefore.toISOString() } : {}) };
    runState = 'retry';
  } else if (fate.state === 'error') {
    const reason = reasonText(fate.error, opts);
    await writeFileAtomic(runFile(opts.runRoot, 'error'), reason);
    const settled = await settlePromptFile({ inbox: opts.inbox, finished: opts.finished, runningPath: opts.runningPath, state: 'error', reason });
    settle = { state: 'error', path: settled.path, ...(settled.reason_path ? { reason_path: settled.reason_path } : {}) };
    runState = 'error';
  } else {
    const settled = await settlePromptFile({ inbox: opts.inbox, finished: opts.finished, runningPath: opts.runningPath, state: 'done' });
    settle = { state: 'done', path: settled.path, ...(fate.outcome ? { outcome: fate.outcome } : {}) };
    runState = 'done';
  }
  settle.settled_at = now.toISOString();
  await updateRunStatus(
    opts.runRoot,
    {
      state: runState,
      step: opts.step,
      settle,
      ...(fate.state !== 'done' ? { error: fate.error, reason: `${fate.error.code}: ${fate.error.message}` } : {}),
      ...(fate.state === 'done' && fate.outcome ? { outcome: fate.outcome } : {}),
      ...(opts.publish?.pr_url ? { pr_url: opts.publish.pr_url } : {}),
      ...(fate.state !== 'pending' ? { final_path: settle.path } : {}),
      ...(durations ? { durations_ms: durations } : {}),
    },
    now,
  );
  return settle;
}

/** Where a stopped run's work went, for the reason file. */
function incompleteLines(error: RecordError): string[] {
  const work = error.incomplete;
  if (!work) return [];
  const lines = [`- stopped: ${work.reason}`];
  if (work.pr_url) lines.push(`- work so far: draft pull request ${work.pr_url} (label ${INCOMPLETE_LABEL})`);
  if (work.branch && work.commit) lines.push(`- pushed: ${work.commit.slice(0, 12)} on ${work.branch}`);
  else if (work.branch) lines.push(`- pushed: ${work.branch}`);
  if (work.not_kept) lines.push(`- work not kept: ${work.not_kept}`);
  return lines;
}

/** The reason a person reads, in the run folder (error.md) and beside the settled prompt. */
function reasonText(error: RecordError, opts: ApplyFateOptions): string {
  const lines = [
    `# Prompt failed: ${error.code}`,
    '',
    error.message,
    '',
    `- step: ${error.step}`,
    `- run: ${opts.runId} (${opts.runRoot})`,
    `- attempt: ${opts.attempt}`,
    `- prompt: ${path.relative(opts.inbox, opts.runningPath)}`,
    `- retryable: ${error.retryable ? 'yes' : 'no'}`,
    ...incompleteLines(error),
  ];
  if (error.detail) lines.push('', '```', error.detail.trimEnd(), '```');
  return lines.join('\n') + '\n';
}
