import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkOwnerName, ConfigError, type Logger, type ValetConfig } from '@prompt-valet/core';
import { applyPlanned } from './apply.js';
import { branchPolicy } from './branch-policy.js';
import { discoverClones } from './discover.js';
import { planInboxRoots, planLiveRepo, repoRootOf, type ActionName, type ActionRecord, type LivePlan, type Planned } from './plan.js';
import { mapPool } from './pool.js';
import { listRemoteBranches } from './remote-branches.js';

export interface PassOptions {
  dryRun: boolean;
  /** how many remotes are asked at once */
  concurrency: number;
  log: Logger;
  emit: (line: ActionRecord) => Promise<void>;
}

export interface PassSummary {
  created: number;
  removed: number;
  marked: number;
  unmarked: number;
  skipped: number;
  failed: number;
  /** repositories found under repos_root (mirrored or not) */
  repos: number;
  /** branch folders the inbox should hold after this pass */
  branches: number;
  /** git processes pv-tree started (git itself may start helpers) */
  git_commands: number;
  duration_ms: number;
  dry_run: boolean;
}

async function requireDir(dir: string, key: string): Promise<void> {
  let ok = false;
  try {
    ok = (await fsp.stat(dir)).isDirectory();
  } catch {
    ok = false;
  }
  // Never read a missing folder as "empty": an unmounted repos_root would
  // otherwise make every inbox folder look stale.
  if (!ok) throw new ConfigError(`${key} ${dir} does not exist or is not a folder`);
}

/** Settings pv-tree cannot work with, beyond what the schema checks. */
export function checkTreeConfig(config: ValetConfig): void {
  if (config.inbox_mode === 'legacy_single_owner') {
    if (!config.git_owner) throw new ConfigError('inbox_mode legacy_single_owner needs git_owner (or watcher.git_default_owner): whose repositories does the inbox show?');
    const check = checkOwnerName(config.git_owner);
    if (!check.ok) throw new ConfigError(`git_owner: ${check.reason}`);
  }
}

/** One pass: list every remote, plan the inbox, apply (unless dry-run), report. */
export async function runPass(config: ValetConfig, opts: PassOptions): Promise<PassSummary> {
  const started = performance.now();
  checkTreeConfig(config);
  await requireDir(config.inbox, 'inbox');
  await requireDir(config.repos_root, 'repos_root');

  const discovery = await discoverClones(config);
  const policy = branchPolicy(config.tree_builder);
  const live = new Set<string>();
  const untouchable = new Set<string>();
  const groups: Planned[][] = [];
  let branches = 0;

  // Each repository is planned as soon as its answer arrives, so the inbox
  // work of one overlaps the remote round trips of the others.
  const plans = new Array<LivePlan | undefined>(discovery.clones.length);
  const listings = await listRemoteBranches(discovery.clones.map((c) => c.dir), {
    workers: opts.concurrency,
    onListing: async (i, listing) => {
      if (listing.ok) plans[i] = await planLiveRepo(config, policy, discovery.clones[i]!, listing.branches);
    },
  });
  const perRepo = discovery.clones.map((clone, i) => ({ clone, listing: listings[i]!, plan: plans[i] }));
  for (const { clone, listing, plan } of perRepo) {
    const root = repoRootOf(config, clone.owner, clone.repo);
    if (!listing.ok || !plan) {
      untouchable.add(root);
      const reason = listing.ok ? 'internal: no plan' : listing.reason;
      groups.push([{
        record: { v: 1, action: 'failed', path: root, repo: clone.key, reason: `cannot list the branches of origin (inbox folders left as they are): ${reason}`, retryable: !listing.ok && listing.retryable },
        op: { kind: 'none' },
      }]);
      continue;
    }
    live.add(clone.key);
    branches += plan.folders;
    if (plan.planned.length > 0) groups.push(plan.planned);
  }
  for (const clone of discovery.notGit) {
    const root = repoRootOf(config, clone.owner, clone.repo);
    untouchable.add(root);
    groups.push([{
      record: { v: 1, action: 'failed', path: root, repo: clone.key, reason: `${clone.dir} is not a git repository (no .git); inbox folders left as they are` },
      op: { kind: 'none' },
    }]);
  }
  for (const bad of discovery.invalid) {
    const multi = config.inbox_mode === 'multi_owner';
    untouchable.add(bad.repo === undefined ? path.join(config.inbox, bad.owner) : multi ? path.join(config.inbox, bad.owner, bad.repo) : path.join(config.inbox, bad.repo));
  }
  const rootsPlan = await planInboxRoots(config, discovery, live, untouchable);
  for (const p of rootsPlan) groups.push([p]);

  const results: ActionRecord[][] = opts.dryRun
    ? groups.map((g) => g.map((p) => ({ ...p.record, dry_run: true as const })))
    : await mapPool(groups, opts.concurrency, async (g) => {
        const out: ActionRecord[] = [];
        for (const p of g) out.push(await applyPlanned(p));
        return out;
      });

  const counts: Record<ActionName, number> = { created: 0, removed: 0, marked: 0, unmarked: 0, skipped: 0, failed: 0 };
  for (const group of results) {
    for (const r of group) {
      counts[r.action]++;
      const where = [r.repo, r.branch].filter(Boolean).join(' ');
      const line = `${r.action}${opts.dryRun ? ' (dry run)' : ''}: ${r.path}${where ? ` [${where}]` : ''}${r.reason ? ` — ${r.reason}` : ''}`;
      if (r.action === 'failed') opts.log.warn(line);
      else opts.log.info(line);
      await opts.emit(r);
    }
  }
  return {
    ...counts,
    repos: discovery.clones.length + discovery.notGit.length + discovery.invalid.filter((i) => i.repo !== undefined).length,
    branches,
    git_commands: discovery.clones.length,
    duration_ms: Math.round(performance.now() - started),
    dry_run: opts.dryRun,
  };
}
