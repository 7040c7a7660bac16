import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  defineTool,
  EX,
  EXIT_STATUS_HELP,
  ORPHAN_GRACE_SECONDS,
  pendingKey,
  pendingKeys,
  readPendingEntry,
  SCHEMA_VERSION,
  ToolError,
  writeRecord,
} from '@prompt-valet/core';
import { isComplete, listPending } from './candidates.js';
import { claimPrompt } from './claim.js';
import { recoverClaims } from './recover.js';

interface ClaimArgs {
  limit?: number;
  inbox?: string;
  'dry-run'?: boolean;
  recover?: boolean;
  'settle-seconds'?: number;
  'grace-seconds'?: number;
  wait?: boolean;
}

export const main = defineTool<ClaimArgs>({
  name: 'pv-claim',
  summary: 'Claim complete prompts in the inbox (x.prompt.md → x.running.md), exactly once, and emit one record per claim.',
  usage: 'pv-claim [--limit N] [--inbox DIR] [--dry-run] [--settle-seconds S]\n  pv-claim --recover [--grace-seconds S] [--dry-run]',
  options: (y) =>
    y
      .option('limit', { type: 'number', describe: 'claim at most N prompts (oldest first); default all' })
      .option('inbox', { type: 'string', describe: 'inbox folder (default: config inbox)' })
      .option('dry-run', { type: 'boolean', describe: 'list what would be claimed (or recovered); change nothing' })
      .option('recover', { type: 'boolean', describe: 'recover claims whose pipeline died, then exit' })
      .option('settle-seconds', { type: 'number', describe: 'a prompt must be unchanged this long (default: watcher.settle_seconds)' })
      .option('wait', {
        type: 'boolean',
        describe: 'start, then wait for one line on stdin before looking (a pre-started claimer); end of input: exit without claiming',
      })
      .option('grace-seconds', {
        type: 'number',
        describe: `with --recover: a running file with no claim record is recovered after this long (default ${ORPHAN_GRACE_SECONDS})`,
      }),
  epilogue: `
A prompt is claimable when it is a non-hidden *.prompt.md, not zero bytes,
not a *.PARTIAL, and unchanged for the settle window. Each claim links
x.prompt.md to x.running.md (exclusive: of any number of claimers exactly
one wins), creates the run folder processed/<run id>/ with a copy of the
prompt and status.json, and records the holder (this pipeline's process
group) in processed/.ledger/claims/. A prompt waiting for its retry backoff
is skipped. Symlinks and other non-regular files are claimed but never read:
their record carries an error so pv-settle files them as x.error.md.

--wait starts the claimer ahead: it loads, then waits for one line on stdin
before it looks (end of input without a line: exit 0, nothing claimed).
pv-watcher keeps one such claimer waiting, so a new prompt costs a walk of
the inbox, not a process start-up.

--recover puts claims whose pipeline is gone back to pending (or settles
them as error after watcher.max_attempts) and emits one record per claim
recovered; claims of live pipelines are left alone. See docs/lifecycle.md.

Output: one record per claim:
  {"v":1,"run_id":"…","claim":{"inbox","rel","path","prompt_name",
   "prompt_rel","run_root","attempt","claimed_at","holder","ino","ledger"}}

${EXIT_STATUS_HELP}

Example:
  pv-claim --limit 1 | pv-resolve | pv-clone | pv-run-codex | pv-publish | pv-settle`,
  async run(ctx) {
    // pv-watcher keeps one claimer started and waiting, so a new prompt
    // costs a directory walk, not a process start-up. The config is read
    // after the go line, so a reload in between is seen.
    if (ctx.args.wait && !(await waitForGoLine(ctx.io.stdin))) return EX.OK;
    const { config } = ctx.config();
    const inbox = path.resolve(ctx.args.inbox ?? config.inbox);
    const limit = ctx.args.limit ?? Infinity;
    if (!(limit >= 0) || (Number.isFinite(limit) && !Number.isInteger(limit))) {
      throw new ToolError('bad_usage', `--limit must be a whole number >= 0, got ${ctx.args.limit}`, EX.USAGE);
    }
    try {
      if (!(await fsp.stat(inbox)).isDirectory()) throw new Error('not a folder');
    } catch (err) {
      throw new ToolError('no_inbox', `inbox ${inbox}: ${(err as Error).message}`, EX.CONFIG);
    }
    await fsp.mkdir(config.processed, { recursive: true });

    if (ctx.args.recover) {
      const recovered = await recoverClaims({
        inbox,
        processed: config.processed,
        finished: config.finished,
        policy: config.watcher,
        graceSeconds: ctx.args['grace-seconds'] ?? ORPHAN_GRACE_SECONDS,
        dryRun: ctx.args['dry-run'] ?? false,
        log: ctx.log,
      });
      for (const rec of recovered) await writeRecord(ctx.io.stdout, rec);
      return EX.OK;
    }

    const settleSeconds = ctx.args['settle-seconds'] ?? config.watcher.settle_seconds;
    const candidates = await listPending(inbox);
    const withEntries = await pendingKeys(config.processed);
    let claimed = 0;
    for (const c of candidates) {
      if (claimed >= limit) break;
      if (!isComplete(c, { inbox, settleSeconds })) continue;
      const pending = withEntries.has(pendingKey(c.rel)) ? await readPendingEntry(config.processed, c.rel, c.ino) : undefined;
      if (ctx.args['dry-run']) {
        if (pending?.not_before && Date.parse(pending.not_before) > Date.now()) continue;
        await writeRecord(ctx.io.stdout, {
          v: SCHEMA_VERSION,
          dry_run: true,
          candidate: { rel: c.rel, path: c.path, size: c.size, attempt: (pending?.attempts ?? 0) + 1 },
        });
        claimed++;
        continue;
      }
      const outcome = await claimPrompt(c, pending, { inbox, processed: config.processed });
      if (!outcome.claimed) {
        ctx.log.debug(`skipped ${c.rel}: ${outcome.why}`);
        continue;
      }
      claimed++;
      ctx.log.info(`claimed ${c.rel} as run ${outcome.record.run_id}`);
      await writeRecord(ctx.io.stdout, outcome.record);
    }
    return EX.OK;
  },
});

/** Resolve true at the first line on `input`, false if it ends without one. */
function waitForGoLine(input: NodeJS.ReadableStream): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = '';
    const onData = (chunk: Buffer | string) => {
      seen += String(chunk);
      if (seen.includes('\n')) finish(true);
    };
    const onEnd = () => finish(seen.length > 0);
    const finish = (go: boolean) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onEnd);
      (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve(go);
    };
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onEnd);
  });
}
