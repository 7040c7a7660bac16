import { environmentRefusal, localPathOfUrl, readCloneOriginUrl, sharedConfigRefusal } from './local-origin.js';
import { readLocalBranches } from './local-refs.js';
import { gitRunEnv, listRemoteBranches, REMOTE, type BranchListing, type ListOptions, type ListTarget } from './remote-branches.js';

/**
 * Every repository's branches, the cheapest way that gives git's answer. A
 * repository whose origin is on this machine (`file:///path` or `/path`) is
 * read in-process (local-refs.ts): no git, sh and git-upload-pack for it.
 * The rest, and every local one that is not plain, go to the git workers
 * exactly as before (remote-branches.ts).
 */
export interface BranchListingOptions extends ListOptions {
  /** where the one `git config` check runs: repos_root, like the upstream-only ls-remotes */
  configCwd: string;
  /** a repository whose origin looked local but went to git, and why (pv-tree logs it at debug) */
  onGitPath?: (index: number, reason: string) => void;
}

export interface BranchListings {
  listings: BranchListing[];
  /** git processes started: the config check (when any origin is local) and one ls-remote per repository asked */
  gitCommands: number;
  /** repositories whose branches were read from the origin's files */
  localListings: number;
  /** why no repository was read in-process (the environment or the shared git config), when that is so */
  allViaGit?: string;
}

/** Between repositories read in-process, let the planning of those already answered run. */
const YIELD_EVERY = 16;

export async function listBranches(targets: readonly ListTarget[], opts: BranchListingOptions): Promise<BranchListings> {
  const listings = new Array<BranchListing>(targets.length);
  if (targets.length === 0) return { listings, gitCommands: 0, localListings: 0 };
  const env = gitRunEnv();
  const uid = process.geteuid?.() ?? -1;

  // The path each repository's origin would be read from, or why not (then git is asked).
  let refusal = uid < 0 ? 'no user id on this platform' : environmentRefusal(env, uid);
  const localPaths = targets.map((target, i): string | undefined => {
    if (refusal) return undefined;
    let url = target.remote;
    if (target.remote === REMOTE) {
      const found = readCloneOriginUrl(target.dir, uid);
      if (!found.ok) {
        opts.onGitPath?.(i, found.reason);
        return undefined;
      }
      url = found.value;
    }
    return localPathOfUrl(url);
  });
  let gitCommands = 0;
  if (!refusal && localPaths.some((p) => p !== undefined)) {
    gitCommands++;
    refusal = await sharedConfigRefusal(env, opts.configCwd);
  }

  const pending: Promise<void>[] = [];
  const answer = (index: number, listing: BranchListing) => {
    listings[index] = listing;
    if (opts.onListing) pending.push(opts.onListing(index, listing));
  };
  const viaGit: number[] = [];
  let localListings = 0;
  for (let i = 0; i < targets.length; i++) {
    const repo = localPaths[i];
    if (repo === undefined || refusal) {
      viaGit.push(i);
      continue;
    }
    const read = readLocalBranches(repo, uid);
    if (!read.ok) {
      opts.onGitPath?.(i, read.reason);
      viaGit.push(i);
      continue;
    }
    localListings++;
    answer(i, { ok: true, branches: read.branches });
    if (localListings % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  gitCommands += viaGit.length;
  if (viaGit.length > 0) {
    await listRemoteBranches(viaGit.map((i) => targets[i]!), {
      workers: opts.workers,
      env,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      onListing: async (j, listing) => answer(viaGit[j]!, listing),
    });
  }
  await Promise.all(pending);
  return { listings, gitCommands, localListings, ...(refusal ? { allViaGit: refusal } : {}) };
}
