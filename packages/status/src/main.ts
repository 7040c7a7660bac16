import { defineTool } from '@prompt-valet/core';
import { readQueue } from '@prompt-valet/core';
import { renderQueue } from './render.js';

interface StatusArgs {
  json?: boolean;
  recent?: number;
}

export const main = defineTool<StatusArgs>({
  name: 'pv-status',
  summary: 'Show the Prompt Valet queue: pending prompts, running runs, recent results.',
  usage: 'pv-status [--json] [--recent N] [--config FILE]',
  options: (y) =>
    y
      .option('json', { type: 'boolean', describe: 'one JSON object for scripts instead of the table' })
      .option('recent', { type: 'number', default: 20, describe: 'how many finished runs to show' }),
  epilogue: `
Reads the filesystem only (inbox/, processed/): it changes nothing and can
run while pv-watcher works.

Output: a table per section for people; with --json one object:
  {"v":1,"generated_at":…,"pending":[{rel,size,mtime}],
   "running":[{run_id,state,owner,repo,branch,age_seconds,last_log_line,…}],
   "recent":[{run_id,state,pr_url,outcome,reason,final_path,…}]}

Exit status: 0 shown; 64 bad command line; 78 bad configuration.

Examples:
  pv-status
  pv-status --json | jq '.running[].run_id'`,
  async run(ctx) {
    const { config } = ctx.config();
    const queue = await readQueue(config, { recent: ctx.args.recent ?? 20 });
    ctx.io.stdout.write(ctx.args.json ? JSON.stringify(queue) + '\n' : renderQueue(queue));
  },
});
