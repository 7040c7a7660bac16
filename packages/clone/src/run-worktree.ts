import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkoutDirFor, git, HARDENED_GIT_OPTIONS, pathExists, type Logger, type TargetSection } from '@prompt-valet/core';
import { moveAside } from './move-aside.js';

/**
 * Each run works in its own `git worktree` of the shared clone, at
 * `<repos_root>/.worktrees/<owner>/<repo>/<run id>`, on the agent branch
 * made from `origin/<base>`. Dot-folders under repos_root are not
 * repositories to pv-tree. pv-publish removes the worktree once the work is
 * pushed (or there was none); a failed run keeps it, so no work is lost.
 */
export function runWorktreeDir(reposRoot: string, owner: string, repo: string, runId: string): string {
  return checkoutDirFor({ repos_root: reposRoot }, owner, repo, runId);
}

interface WorktreeEntry {
  dir: string;
  branch?: string;
  /** its folder is gone: `git worktree prune` would forget it */
  prunable: boolean;
}

async function listWorktrees(repoDir: string): Promise<WorktreeEntry[]> {
  const { stdout } = await git(['worktree', 'list', '--porcelain'], { cwd: repoDir });
  const out: WorktreeEntry[] = [];
  for (const block of stdout.split('\n\n')) {
    const lines = block.split('\n');
    const dir = lines.find((l) => l.startsWith('worktree '))?.slice('worktree '.length);
    const branch = lines.find((l) => l.startsWith('branch '))?.slice('branch '.length);
    const prunable = lines.some((l) => l === 'prunable' || l.startsWith('prunable '));
    if (dir) out.push(branch ? { dir, branch, prunable } : { dir, prunable });
  }
  return out;
}


export interface RunWorktree {
  dir: string;
  /** the agent branch existed (an earlier attempt) and was reset */
  reused_branch: boolean;
  /** where earlier checkouts in the way were moved */
  moved_aside: string[];
}

/**
 * Make the run's worktree on the agent branch at `baseSha`. Callers hold the
 * repository lock. `localAgentSha` is the local agent branch as the clone's
 * refs were read (syncClone), undefined when there is none.
 *
 * Only a checkout of an earlier attempt can be in the way: one at our folder
 * (seen without git), or one holding the agent branch, which exists then.
 * So `worktree list` runs only when the branch exists, and `worktree prune`
 * only when an entry is stale (just moved aside, or its folder gone). git's
 * own entry for our folder, left by a try whose folder is gone, is taken
 * over by `worktree add --force` (not made `<run id>1`, where pv-publish
 * would not look).
 */
export async function addRunWorktree(
  t: TargetSection, runId: string, baseSha: string, reposRoot: string, log: Logger, localAgentSha: string | undefined,
): Promise<RunWorktree> {
  const repoDir = t.repo_dir;
  const dir = runWorktreeDir(reposRoot, t.owner, t.repo, runId);
  const branchRef = `refs/heads/${t.agent_branch}`;
  const movedAside: string[] = [];

  // An earlier attempt's checkout, at our folder or holding our branch, may
  // hold work: move it aside rather than reset it.
  const listed = localAgentSha ? await listWorktrees(repoDir) : [];
  const holders = listed.filter((w) => w.branch === branchRef && path.resolve(w.dir) !== path.resolve(repoDir));
  const inTheWay = new Set<string>(holders.map((w) => w.dir));
  if (await pathExists(dir)) inTheWay.add(dir);
  for (const old of inTheWay) {
    if (!(await pathExists(old))) continue;
    const to = await moveAside(reposRoot, old, path.join('worktrees', t.owner, t.repo));
    movedAside.push(to);
    log.warn(`an earlier checkout ${old} was in the way: moved it to ${to} (nothing deleted)`);
  }
  const stale = movedAside.length > 0 || listed.some((w) => w.prunable);
  // Forget worktrees whose folders are gone (a crash, an operator's rm, the moves above).
  if (stale) await git(['worktree', 'prune'], { cwd: repoDir });

  if (localAgentSha) log.info(`agent branch ${t.agent_branch} exists from an earlier attempt (at ${localAgentSha}): resetting it to origin/${t.branch}`);

  await fsp.mkdir(path.dirname(dir), { recursive: true });
  // No hook of the shared clone runs (post-checkout): its checkouts are where agents work.
  await git([...HARDENED_GIT_OPTIONS, 'worktree', 'add', '--quiet', '--force', '-B', t.agent_branch, '--', dir, baseSha], { cwd: repoDir });
  return { dir, reused_branch: Boolean(localAgentSha), moved_aside: movedAside };
}
