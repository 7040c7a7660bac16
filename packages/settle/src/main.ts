import { defineTool, EXIT_STATUS_HELP, mapRecords } from '@prompt-valet/core';
import { settleRecord } from './settle.js';

interface SettleArgs {
  'max-attempts'?: number;
  'retry-backoff-seconds'?: number;
}

export const main = defineTool<SettleArgs>({
  name: 'pv-settle',
  summary: "Settle each claimed prompt: done, error (with the reason beside it), or back to pending for a retry.",
  usage: 'pv-settle [--config FILE] < records',
  options: (y) =>
    y
      .option('max-attempts', { type: 'number', describe: 'override watcher.max_attempts' })
      .option('retry-backoff-seconds', { type: 'number', describe: 'override watcher.retry_backoff_seconds' }),
  epilogue: `
Input: records from pv-claim (through the other steps). A record with no
"error" succeeded: x.running.md becomes x.done.md and moves to
finished/<same folder>/ (publish.outcome, e.g. no_changes, is kept as the
outcome). A record with an error:
  - code aborted_shutdown: back to pending as x.prompt.md, not counted as an attempt;
  - retryable, attempt < watcher.max_attempts: back to pending, attempt kept,
    not claimed again before retry_backoff_seconds × 2^(attempt-1);
  both hand the run on (the retry entry's resume_run_id): the next claim
  continues the same run, and steps already completed are not done again;
  - otherwise: x.error.md in finished/, the reason beside it in x.error.txt
    and in the run folder's error.md.
Names in finished/ are never overwritten (x.2.done.md, …). The run's
status.json gets its final state, outcome, PR URL and total duration.
Settling the same record twice changes nothing the second time. Every path
comes from the configuration and the record's run_id and claim.rel; a
record whose claim.path, claim.run_root or claim.ledger names another place
fails with foreign_path and nothing is moved. Files are moved with mv -n
(never replacing), so prompts the service user does not own settle too.

Output: each record with "settle": {"state":"done"|"error"|"pending","path",…}.

${EXIT_STATUS_HELP}

Example:
  pv-claim | pv-resolve | pv-clone | pv-run-codex | pv-publish | pv-settle`,
  async run(ctx) {
    const { config } = ctx.config();
    const policy = {
      max_attempts: ctx.args['max-attempts'] ?? config.watcher.max_attempts,
      retry_backoff_seconds: ctx.args['retry-backoff-seconds'] ?? config.watcher.retry_backoff_seconds,
    };
    return mapRecords(
      ctx,
      'settle',
      async (rec) => {
        // Nothing was claimed (e.g. a malformed line): keep the first error.
        if (!rec.claim && rec.error) return rec;
        const out = await settleRecord(rec, config, policy);
        const s = out.settle!;
        ctx.log.info(`${out.claim?.prompt_rel ?? out.run_id}: ${s.state}${s.already ? ' (already settled)' : ''} → ${s.path}`);
        return out;
      },
      { includeFailed: true },
    );
  },
});
