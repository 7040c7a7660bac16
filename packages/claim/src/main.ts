import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  CLAIM_LOCK_ENV,
  CLAIM_LOCK_FD,
  claimLockPath,
  defineTool,
  EX,
  EXIT_STATUS_HELP,
  inheritedClaimLock,
  ORPHAN_GRACE_SECONDS,
  ToolError,
  writeRecord,
} from '@prompt-valet/core';
import { claimPrompts } from './claim.js';
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
      .option('settle-seconds', { type: 'number', describe: 'a prompt must be unchanged this long (default: watcher.quiet_seconds)' })
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
not a *.PARTIAL, and unchanged for the settle window. Each claim moves
x.prompt.md to x.running.md with mv -n (never replacing; of any number of
claimers exactly one wins; the folder must be writable, the file may be
anyone's), creates the run folder processed/<run id>/ with a copy of the
prompt and status.json, and records the claim lock in
processed/.ledger/claims/. A prompt whose pending entry names a run to
resume continues that run (same run id and folder; claim.resumed), unless
the run's claim record still stands (another claimer resuming it, or the
claim that put it back has not let go yet): then it is left for the next
look. A prompt waiting for its retry backoff is skipped. Symlinks and other non-regular
files are claimed but never read, and a prompt the service user cannot read
is claimed as prompt_unreadable: their record carries an error so pv-settle
files them as x.error.md. A folder it cannot read or write is reported once,
in one line, and skipped.

Claim lock: pv-claim claims only while it holds one: PV_CLAIM_LOCK=<id>
names processed/.ledger/locks/<id>.lock, locked (flock) on a descriptor it
inherited (fd 9). pv-watcher sets this up for each pipeline; by hand:
  lock=processed/.ledger/locks/by-hand.lock
  sh -c 'exec 9<>"$0" && flock -n 9 && PV_CLAIM_LOCK=by-hand pv-claim --limit 1 | pv-resolve | … | pv-settle' "$lock"
The claim is held while any process holding the lock lives.

--wait starts the claimer ahead: it loads, then waits for one line on stdin
before it looks (end of input without a line: exit 0, nothing claimed).
The line "go <rel>" names a prompt (relative to the inbox) that a file
event saw: it is tried first, by the same rules, and the inbox is walked
only if more are wanted or it was not claimable; "go" alone walks.
pv-watcher keeps one such claimer waiting, so a new prompt costs a look at
one file, not a process start-up or a walk of the whole inbox.

--recover takes the claim lock of each claim record: a lock that can be
taken means the pipeline is gone. Such a claim goes back to pending to be
resumed (or settles as error after watcher.max_attempts); a settle that died
half-way is finished. One record per claim recovered; claims whose lock is
held are left alone. See docs/lifecycle.md.

Output: one record per claim:
  {"v":1,"run_id":"…","claim":{"inbox","rel","path","prompt_name",
   "prompt_rel","run_root","attempt","claimed_at","liveness","ino","ledger",
   "resumed" (when a run is continued)}}

${EXIT_STATUS_HELP}

Examples:
  pv-claim --dry-run                 what would be claimed (needs no lock)
  pv-watcher --once                  claim and run everything pending, each under a lock`,
  async run(ctx) {
    // pv-watcher keeps one claimer started and waiting, so a new prompt
    // costs a directory walk, not a process start-up. The config is read
    // after the go line, so a reload in between is seen.
    const go = ctx.args.wait ? await waitForGoLine(ctx.io.stdin) : undefined;
    if (ctx.args.wait && !go) return EX.OK;
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

    const dryRun = ctx.args['dry-run'] ?? false;
    const lock = inheritedClaimLock(ctx.io.env, config.processed);
    if (!lock && !dryRun) throw new ToolError('no_claim_lock', noLockMessage(config.processed), EX.USAGE);
    await claimPrompts({
      inbox,
      processed: config.processed,
      lockId: lock?.id ?? 'dry-run',
      settleSeconds: ctx.args['settle-seconds'] ?? config.watcher.quiet_seconds,
      limit,
      dryRun,
      hint: go?.hint,
      log: ctx.log,
      emit: (rec) => writeRecord(ctx.io.stdout, rec),
    });
    return EX.OK;
  },
});

/** The two ways to run pv-claim under a claim lock (docs/lifecycle.md). */
function noLockMessage(processed: string): string {
  const file = claimLockPath(processed, 'by-hand');
  return (
    `pv-claim claims only while holding a claim lock (${CLAIM_LOCK_ENV} naming a lock this process holds on fd ${CLAIM_LOCK_FD}): ` +
    `run pv-watcher --once, or by hand: sh -c 'exec ${CLAIM_LOCK_FD}<>"$0" && flock -n ${CLAIM_LOCK_FD} && ${CLAIM_LOCK_ENV}=by-hand pv-claim --limit 1 | pv-resolve | … | pv-settle' ${file}`
  );
}

/**
 * The first line on `input`: `go`, or `go <rel>` naming the prompt a file
 * event saw (tried before the walk). Undefined if input ends without a line.
 */
function waitForGoLine(input: NodeJS.ReadableStream): Promise<{ hint?: string } | undefined> {
  return new Promise((resolve) => {
    let seen = '';
    const onData = (chunk: Buffer | string) => {
      seen += String(chunk);
      if (seen.includes('\n')) finish();
    };
    const onEnd = () => finish();
    const finish = () => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onEnd);
      (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve(seen.length > 0 ? parseGoLine(seen.split('\n')[0] ?? '') : undefined);
    };
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onEnd);
  });
}

/** `go` → {}; `go <rel>` → { hint: rel }; any other line is a plain go (the walk decides). */
function parseGoLine(line: string): { hint?: string } {
  const m = /^go (.+)$/.exec(line);
  return m ? { hint: m[1] } : {};
}
