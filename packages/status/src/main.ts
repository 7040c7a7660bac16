import { defineTool } from '@prompt-valet/core';
import { MAX_TOKEN_DAYS, readQueue, readTokenTotals } from '@prompt-valet/core';
import { renderQueue } from './render.js';

interface StatusArgs {
  json?: boolean;
  recent?: number;
  days?: number;
}

export const main = defineTool<StatusArgs>({
  name: 'pv-status',
  summary: 'Show the Prompt Valet queue: pending prompts, running runs, recent results.',
  usage: 'pv-status [--json] [--recent N] [--days N] [--config FILE]',
  options: (y) =>
    y
      .option('json', { type: 'boolean', describe: 'one JSON object for scripts instead of the table' })
      .option('recent', { type: 'number', default: 20, describe: 'how many finished runs to show' })
      .option('days', { type: 'number', default: 7, describe: `tokens per day for this many days, today first (at most ${MAX_TOKEN_DAYS})` }),
  epilogue: `
Reads the filesystem only (inbox/, processed/): it changes nothing and can
run while pv-watcher works.

Output: a table per section for people; with --json one object:
  {"v":1,"generated_at":…,"pending":[{rel,size,mtime}],
   "running":[{run_id,state,owner,repo,branch,age_seconds,last_log_line,…}],
   "recent":[{run_id,state,pr_url,outcome,reason,final_path,tokens,…}],
   "tokens_per_day":{"days":[{day,runs,tokens}],"truncated":false}}

Tokens: each run's "tokens" is the total its agent used (status.json usage);
tokens_per_day adds up the runs started each day (UTC, by the date in the
run id), so only the runs of those days are read, at most 5000 of them
("truncated" says when more were left out).

Exit status: 0 shown; 64 bad command line; 78 bad configuration.

Examples:
  pv-status
  pv-status --json | jq '.running[].run_id'`,
  async run(ctx) {
    const { config } = ctx.config();
    const queue = await readQueue(config, { recent: ctx.args.recent ?? 20 });
    const tokens = await readTokenTotals(config.processed, { days: ctx.args.days ?? 7, now: new Date(queue.generated_at) });
    ctx.io.stdout.write(ctx.args.json ? JSON.stringify({ ...queue, tokens_per_day: tokens }) + '\n' : renderQueue(queue, tokens));
  },
});
