import * as os from 'node:os';
import { defineTool, EX, EXIT_STATUS_HELP, ToolError, type ToolContext, type ValetConfig } from '@prompt-valet/core';
import { runPass, type PassSummary } from './pass.js';
import type { ActionRecord } from './plan.js';

interface TreeArgs {
  once?: boolean;
  'dry-run'?: boolean;
  concurrency?: number;
}

/**
 * Remotes asked with git at once. A local remote that git must be asked for
 * costs CPU (git and upload-pack), a network one mostly waiting, so a few
 * per core keep every core busy without hammering a Git host. (Plain local
 * origins are read in-process and take no worker.)
 */
export const DEFAULT_CONCURRENCY = Math.min(32, Math.max(4, os.availableParallelism() * 4));

const EPILOGUE = `
Mirrors the branches that exist upstream into the inbox: for every clone
<repos_root>/<owner>/<repo> it asks origin for its branches (git ls-remote)
and keeps one folder per branch in inbox/<repo>/ (inbox_mode
legacy_single_owner, only git_owner's repositories) or inbox/<owner>/<repo>/
(multi_owner). Branch feature/x has the folder feature~x.

An origin on this machine (file:///path or /path) is read in-process from
its refs (loose, then packed-refs), without a git process; one
"git config --list" a pass checks that no insteadOf, include or hideRefs
rule could change git's answer. Anything not plain (another owner,
extensions such as reftable, a symbolic ref, a malformed file, …) is
asked with git ls-remote as any other remote.

Filters (tree_builder.*): branch_name_blacklist always applies; branch_mode
all | whitelist | blacklist | both (whitelist, then blacklist) picks the rest.
A list entry containing "*" is a glob ("*" matches anything, "/" included),
any other entry matches only the identical name.

tree_builder.mirror_agent_branches (default true): agent branches (codex/x)
get folders (codex~x) like any branch, and a prompt dropped there is a
follow-up of that run (its branch and PR); false: they get none.

tree_builder.greedy_inboxes (default false): also the owner's repositories
that are not cloned yet: "gh repo list OWNER --json name,isArchived"
(archived ones skipped), then "git ls-remote --heads <clone URL>" for each,
so their folders exist before the first prompt. Owners: git_owner, and in
multi_owner mode every owner folder under repos_root. gh uses GH_HOST, else
watcher.gh_host, else watcher.git_default_host, and its token from the
environment. A listing that fails changes none of the owner's folders.

A folder that mirrors nothing any more is removed when empty; if it holds
anything at all it is left in place with an ERROR.md that lists the files.
A folder with a *.running.md below it is left alone entirely. A repository
whose branches cannot be listed keeps its folders exactly as they are.

Output: one JSON line per action on stdout,
  {"v":1,"action":"created|removed|marked|unmarked|skipped|failed","path":…,"repo":…,"branch":…,"reason":…}
then one summary line {"v":1,"summary":{created,removed,marked,unmarked,
skipped,failed,repos,branches,upstream_repos,git_commands,local_listings,
gh_commands,duration_ms,dry_run}}: git_commands counts the git processes
started, local_listings the repositories read in-process.
A pass that finds the inbox already right prints only the summary.
Without --once it runs a pass every tree_builder.scan_interval_seconds until
SIGTERM or SIGINT (then exits 0).

${EXIT_STATUS_HELP}
  (a repository whose listing failed is a "failed" line, not an exit status)

Example:
  pv-tree --once --dry-run | jq -c 'select(.action)'
`;

async function writeLine(out: NodeJS.WritableStream, value: unknown): Promise<void> {
  if (!out.write(JSON.stringify(value) + '\n')) await new Promise<void>((resolve) => out.once('drain', resolve));
}

function describeSummary(s: PassSummary): string {
  const parts = (['created', 'removed', 'marked', 'unmarked', 'skipped', 'failed'] as const).filter((k) => s[k] > 0).map((k) => `${s[k]} ${k}`);
  return `${s.repos} repositories, ${s.branches} branch folders, ${parts.length ? parts.join(', ') : 'no change'} in ${s.duration_ms} ms${s.dry_run ? ' (dry run)' : ''}`;
}

async function onePass(ctx: ToolContext<TreeArgs>, config: ValetConfig): Promise<void> {
  const summary = await runPass(config, {
    dryRun: Boolean(ctx.args['dry-run']),
    concurrency: ctx.args.concurrency ?? DEFAULT_CONCURRENCY,
    log: ctx.log,
    emit: (r: ActionRecord) => writeLine(ctx.io.stdout, r),
  });
  await writeLine(ctx.io.stdout, { v: 1, summary });
  ctx.log.info(describeSummary(summary));
}

/** Every scan_interval_seconds until a signal. The config is read again each pass, so edits apply without a restart. */
async function loop(ctx: ToolContext<TreeArgs>): Promise<number> {
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = (signal: string) => {
    if (!stopping) ctx.log.info(`${signal}: stopping after the current pass`);
    stopping = true;
    wake?.();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let lastGood: ValetConfig | undefined;
  try {
    while (!stopping) {
      let config: ValetConfig;
      try {
        config = ctx.config().config;
        lastGood = config;
      } catch (err) {
        // A config broken mid-loop: say so and keep the last good one, rather
        // than ending the service; a broken config at start is exit 78.
        if (!lastGood) throw err;
        ctx.log.error(`${(err as Error).message} (keeping the previous configuration)`);
        config = lastGood;
      }
      try {
        await onePass(ctx, config);
      } catch (err) {
        if (!(err instanceof ToolError)) throw err;
        ctx.log.error(`${err.message} (trying again in ${config.tree_builder.scan_interval_seconds} s)`);
      }
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, config.tree_builder.scan_interval_seconds * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
  return EX.OK;
}

export const main = defineTool<TreeArgs>({
  name: 'pv-tree',
  summary: 'pv-tree: keep the inbox folders in step with the branches that exist upstream',
  usage: 'pv-tree [--once] [--dry-run] [--config FILE] [--verbose]',
  epilogue: EPILOGUE,
  options: (y) =>
    y
      .option('once', { type: 'boolean', describe: 'run one pass and exit (default: a pass every tree_builder.scan_interval_seconds)' })
      .option('dry-run', { alias: 'n', type: 'boolean', describe: 'print the actions a pass would take; change nothing' })
      .option('concurrency', { type: 'number', describe: `remotes asked with git at once (default ${DEFAULT_CONCURRENCY})` })
      .check((a) => {
        if (a.concurrency !== undefined && (!Number.isInteger(a.concurrency) || a.concurrency < 1)) throw new Error('--concurrency must be a whole number >= 1');
        return true;
      }),
  async run(ctx) {
    if (ctx.args.once) {
      await onePass(ctx, ctx.config().config);
      return EX.OK;
    }
    return loop(ctx);
  },
});
