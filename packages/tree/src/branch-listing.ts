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

/** Between repositories read in-process, let the planning of those already answered (and the config check) run. */
const YIELD_EVERY = 16;

export async function listBranches(targets: readonly ListTarget[], opts: BranchListingOptions): Promise<BranchListings> {
  const listings = new Array<BranchListing>(targets.length);
  if (targets.length === 0) return { listings, gitCommands: 0, localListings: 0 };
  const env = gitRunEnv();
  const uid = process.geteuid?.() ?? -1;
  const envRefusal = uid < 0 ? 'no user id on this platform' : environmentRefusal(env, uid);

  const pending: Promise<void>[] = [];
  const answer = (index: number, listing: BranchListing) => {
    listings[index] = listing;
    if (opts.onListing) pending.push(opts.onListing(index, listing));
  };
  const viaGit: number[] = [];
  let gitCommands = 0;
  let localListings = 0;

  // The shared config check starts with the first local origin and runs while
  // the origins are read; their answers are held until it has said yes.
  let check: Promise<void> | undefined;
  let checked = false;
  let configRefusal: string | undefined;
  const held: { index: number; branches: string[] }[] = [];
  const release = () => {
    for (const { index, branches } of held.splice(0)) {
      if (configRefusal) viaGit.push(index);
      else {
        localListings++;
        answer(index, { ok: true, branches });
      }
    }
  };

  let read = 0;
  for (let i = 0; i < targets.length; i++) {
    const repo = envRefusal || (checked && configRefusal) ? undefined : localOriginOf(targets[i]!, uid, (reason) => opts.onGitPath?.(i, reason));
    if (repo === undefined) {
      viaGit.push(i);
      continue;
    }
    if (!check) {
      gitCommands++;
      check = sharedConfigRefusal(env, opts.configCwd).then((why) => {
        configRefusal = why;
        checked = true;
      });
    }
    const local = readLocalBranches(repo, uid);
    if (!local.ok) {
      opts.onGitPath?.(i, local.reason);
      viaGit.push(i);
      continue;
    }
    held.push({ index: i, branches: local.branches });
    if (checked) release();
    if (++read % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (check) await check;
  release();
  viaGit.sort((a, b) => a - b);

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
  const allViaGit = envRefusal ?? configRefusal;
  return { listings, gitCommands, localListings, ...(allViaGit ? { allViaGit } : {}) };
}

/** The absolute path of the target's origin when it is on this machine; undefined for git to ask (a reason for anything odd). */
function localOriginOf(target: ListTarget, uid: number, odd: (reason: string) => void): string | undefined {
  if (target.remote !== REMOTE) return localPathOfUrl(target.remote);
  const found = readCloneOriginUrl(target.dir, uid);
  if (!found.ok) {
    odd(found.reason);
    return undefined;
  }
  return localPathOfUrl(found.value);
}
