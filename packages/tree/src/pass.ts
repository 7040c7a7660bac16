import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkOwnerName, cloneUrl, ConfigError, type Logger, type ValetConfig } from '@prompt-valet/core';
import { applyPlanned } from './apply.js';
import { branchPolicy } from './branch-policy.js';
import { discoverClones, type Clone, type Discovery } from './discover.js';
import { planInboxRoots, planLiveRepo, repoRootOf, type ActionName, type ActionRecord, type LivePlan, type Planned } from './plan.js';
import { mapPool } from './pool.js';
import { listBranches } from './branch-listing.js';
import { REMOTE, type ListTarget } from './remote-branches.js';
import { listUpstreamRepos, type OwnerListing } from './upstream-repos.js';

export interface PassOptions {
  dryRun: boolean;
  /** how many remotes are asked at once */
  concurrency: number;
  log: Logger;
  emit: (line: ActionRecord) => Promise<void>;
  /** environment for gh (greedy discovery); default process.env */
  env?: NodeJS.ProcessEnv;
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
  /** repositories found upstream only (tree_builder.greedy_inboxes), not cloned yet */
  upstream_repos: number;
  /** git processes pv-tree started (git itself may start helpers) */
  git_commands: number;
  /** repositories whose branches were read from a local origin's files, without git */
  local_listings: number;
  /** gh processes pv-tree started (greedy discovery: one per owner) */
  gh_commands: number;
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
  const policy = branchPolicy(config.tree_builder, config.watcher.agent_branch_prefix);
  const live = new Set<string>();
  const untouchable = new Set<string>();
  const groups: Planned[][] = [];
  let branches = 0;

  const greedy = config.tree_builder.greedy_inboxes ? await discoverUpstream(config, discovery, opts.env ?? process.env, opts.log) : undefined;
  for (const failure of greedy?.failed ?? []) {
    // A failed listing is never read as "no repositories": every inbox folder
    // of the owner that no clone backs is left as it is.
    const ownerRoot = config.inbox_mode === 'multi_owner' ? path.join(config.inbox, failure.owner) : config.inbox;
    groups.push([{
      record: { v: 1, action: 'failed', path: ownerRoot, reason: `cannot list the repositories of ${failure.owner} upstream (inbox folders left as they are): ${failure.reason}`, retryable: true },
      op: { kind: 'none' },
    }]);
  }
  const upstreamOnly = greedy?.repos ?? [];
  const targets: { clone: Clone; list: ListTarget; upstream: boolean }[] = [
    ...discovery.clones.map((clone) => ({ clone, list: { dir: clone.dir, remote: REMOTE }, upstream: false })),
    // Not cloned: asked by URL from repos_root (not a repository, so no clone's config applies).
    ...upstreamOnly.map((clone) => ({
      clone,
      list: { dir: config.repos_root, remote: cloneUrl(config.watcher.git_protocol, config.watcher.git_default_host, clone.owner, clone.repo) },
      upstream: true,
    })),
  ];

  // Each repository is planned as soon as its answer arrives, so the inbox
  // work of one overlaps the remote round trips of the others.
  const plans = new Array<LivePlan | undefined>(targets.length);
  const listed = await listBranches(targets.map((t) => t.list), {
    workers: opts.concurrency,
    configCwd: config.repos_root,
    onListing: async (i, listing) => {
      if (listing.ok) plans[i] = await planLiveRepo(config, policy, targets[i]!.clone, listing.branches);
    },
    onGitPath: (i, reason) => opts.log.debug(`${targets[i]!.clone.key}: asking git (${reason})`),
  });
  if (listed.allViaGit) opts.log.debug(`every origin is asked with git: ${listed.allViaGit}`);
  const { listings } = listed;
  const perRepo = targets.map((target, i) => ({ ...target, listing: listings[i]!, plan: plans[i] }));
  for (const { clone, listing, plan, upstream } of perRepo) {
    const root = repoRootOf(config, clone.owner, clone.repo);
    if (!listing.ok || !plan) {
      untouchable.add(root);
      const reason = listing.ok ? 'internal: no plan' : listing.reason;
      const what = upstream ? `cannot list the branches of ${clone.key} upstream (not cloned; inbox folders left as they are)` : 'cannot list the branches of origin (inbox folders left as they are)';
      groups.push([{
        record: { v: 1, action: 'failed', path: root, repo: clone.key, reason: `${what}: ${reason}`, retryable: !listing.ok && listing.retryable },
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
  const unknownOwners = new Set((greedy?.failed ?? []).map((f) => f.owner));
  const rootsPlan = await planInboxRoots(config, discovery, live, untouchable, unknownOwners);
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
    upstream_repos: upstreamOnly.length,
    git_commands: listed.gitCommands,
    local_listings: listed.localListings,
    gh_commands: greedy?.ghCommands ?? 0,
    duration_ms: Math.round(performance.now() - started),
    dry_run: opts.dryRun,
  };
}

interface UpstreamDiscovery {
  /** repositories upstream that have no folder under repos_root, as would-be clones */
  repos: Clone[];
  failed: { owner: string; reason: string }[];
  ghCommands: number;
}

/**
 * tree_builder.greedy_inboxes: which owners to ask, and which of their
 * repositories are not under repos_root yet. Owners: git_owner in
 * legacy_single_owner mode; in multi_owner mode every owner folder under
 * repos_root, and git_owner when set. A repository whose folder exists
 * under repos_root in any state (clone, not a git repository, invalid) is
 * left to the clone discovery.
 */
async function discoverUpstream(config: ValetConfig, discovery: Discovery, env: NodeJS.ProcessEnv, log: Logger): Promise<UpstreamDiscovery> {
  const owners = new Set<string>(config.inbox_mode === 'multi_owner' ? discovery.owners : []);
  if (config.git_owner) owners.add(config.git_owner);
  const known = new Set([...discovery.clones, ...discovery.notGit].map((c) => c.key));
  for (const bad of discovery.invalid) if (bad.repo !== undefined) known.add(`${bad.owner}/${bad.repo}`);
  const listings: OwnerListing[] = await mapPool([...owners].sort(), 4, (owner) => listUpstreamRepos(config, owner, env));
  const out: UpstreamDiscovery = { repos: [], failed: [], ghCommands: listings.length };
  for (const listing of listings) {
    if (!listing.ok) {
      out.failed.push({ owner: listing.owner, reason: listing.reason });
      continue;
    }
    // The owner exists upstream: in multi_owner mode its folder is not stale.
    discovery.owners.add(listing.owner);
    // Such as `.github`: a repository name the inbox cannot hold. Every pass would say it again, so only at debug level.
    for (const s of listing.skipped) log.debug(`${listing.owner}/${s.name} upstream gets no inbox folder: ${s.reason}`);
    for (const repo of listing.repos) {
      const key = `${listing.owner}/${repo}`;
      if (!known.has(key)) out.repos.push({ owner: listing.owner, repo, key, dir: path.join(config.repos_root, listing.owner, repo) });
    }
  }
  return out;
}
