import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, GitError, isErrno, StepError, type Logger, type TargetSection } from '@prompt-valet/core';
import { moveAside } from './move-aside.js';

/**
 * The shared clone `repos_root/<owner>/<repo>`: made when missing, checked
 * (a git repository whose origin is the resolved URL), and synced to
 * `origin/<base>`. Callers hold the repository lock.
 */
export interface CloneOptions {
  reposRoot: string;
  autoClone: boolean;
  cleanup: boolean;
  log: Logger;
}

export interface CloneState {
  /** what had to be done before syncing */
  action: 'cloned' | 'existing' | 'replaced';
  /** where a folder in the way was moved */
  moved_to?: string;
  /** a stash made of local changes in the clone */
  stashed?: string;
}

/** `https://x@host/a/b.git/` and `https://host/a/b` name the same repository. */
export function sameRemote(a: string, b: string): boolean {
  const norm = (u: string) => u.trim().replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]+@/i, '$1').replace(/\/+$/, '').replace(/\.git$/, '');
  return norm(a) === norm(b);
}

/**
 * What the folder's own git repository says of itself, read by one git
 * process: `origin` when `<dir>/.git` is a repository whose work tree is
 * `dir`, undefined when it is not a clone at all. An explicit --git-dir
 * keeps git from walking up to a repository around a broken `.git`, and
 * `--local` makes it fail there (config alone would read the global files
 * and say "not found"); a bare repository or one whose core.worktree is
 * elsewhere is not a clone of this folder either.
 */
async function cloneOrigin(dir: string): Promise<{ origin: string } | undefined> {
  try {
    const st = await fsp.lstat(dir);
    if (!st.isDirectory()) return undefined;
    await fsp.lstat(path.join(dir, '.git'));
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
  let listed: string;
  try {
    listed = (await git(['--git-dir', path.join(dir, '.git'), '--work-tree', dir,
      'config', '--local', '--get-regexp', '^(remote\\.origin\\.url|core\\.bare|core\\.worktree)$'], { cwd: dir })).stdout;
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    // exit 1: a repository with none of the keys; anything else: no repository.
    return err.exitCode === 1 ? { origin: '' } : undefined;
  }
  const values = new Map<string, string>();
  for (const line of listed.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) values.set(line.slice(0, space), line.slice(space + 1)); // the last value wins, as with --get
  }
  if (values.get('core.bare') === 'true') return undefined;
  const worktree = values.get('core.worktree');
  if (worktree !== undefined && (await realpathOrSelf(path.resolve(dir, '.git', worktree))) !== (await fsp.realpath(dir))) return undefined;
  return { origin: values.get('remote.origin.url') ?? '' };
}

async function realpathOrSelf(p: string): Promise<string> {
  try {
    return await fsp.realpath(p);
  } catch {
    return p;
  }
}

/**
 * A full clone, checked out. `--no-checkout` would leave an empty index under
 * a HEAD with files: git then shows every file as a staged deletion, and if
 * the run stopped before syncClone's checkout (base_branch_missing), every
 * later run took that for local changes and stashed them.
 */
async function cloneFresh(url: string, dir: string): Promise<void> {
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  await git(['clone', '--quiet', '--', url, dir]);
}

export async function ensureClone(t: TargetSection, opts: CloneOptions): Promise<CloneState> {
  const dir = t.repo_dir;
  let exists = true;
  try {
    await fsp.lstat(dir);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    exists = false;
  }
  if (!exists) {
    if (!opts.autoClone) {
      throw new StepError('repo_missing_auto_clone_off',
        `${dir} does not exist and watcher.auto_clone_missing_repos is off: clone ${t.clone_url} there, or turn it on`);
    }
    opts.log.info(`cloning ${t.clone_url} into ${dir}`);
    await cloneFresh(t.clone_url, dir);
    return { action: 'cloned' };
  }

  let problem: { code: string; message: string } | undefined;
  const clone = await cloneOrigin(dir);
  if (!clone) {
    problem = { code: 'not_a_git_repo', message: `${dir} exists but is not a git repository` };
  } else if (!sameRemote(clone.origin, t.clone_url)) {
    problem = { code: 'origin_mismatch', message: `${dir} is a clone of ${clone.origin || '(no origin)'}, not ${t.clone_url}` };
  }
  if (!problem) return { action: 'existing' };
  if (!opts.cleanup) {
    throw new StepError(problem.code, `${problem.message}; watcher.cleanup_non_git_dirs is off, so it was left alone: move it away by hand`);
  }
  const movedTo = await moveAside(opts.reposRoot, dir, path.join('repos', t.owner));
  opts.log.warn(`${problem.message}: moved it to ${movedTo} (nothing deleted) and cloning afresh`);
  await cloneFresh(t.clone_url, dir);
  return { action: 'replaced', moved_to: movedTo };
}

/** The refs a run starts from, read once after the fetch. */
export interface CloneRefs {
  /** `origin/<base>` */
  baseSha: string;
  /** `origin/<agent branch>`: where a follow-up starts */
  remoteAgentSha?: string;
  /** the local agent branch, left by an earlier attempt */
  localAgentSha?: string;
}

interface RefTip {
  sha: string;
  /** HEAD of the clone's own checkout is this branch */
  isHead: boolean;
}

/**
 * The commits of the named refs in one `git for-each-ref` (one process
 * instead of a rev-parse per ref). A ref that is missing, or names no
 * commit (an annotated tag of one is peeled), is left out.
 */
async function refTips(repoDir: string, refs: string[]): Promise<Map<string, RefTip>> {
  const { stdout } = await git(['for-each-ref', '--format=%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00%(HEAD)', '--', ...refs], { cwd: repoDir });
  const wanted = new Set(refs);
  const tips = new Map<string, RefTip>();
  for (const line of stdout.split('\n')) {
    const [name, type, sha, peeledType, peeledSha, head] = line.split('\0');
    // for-each-ref also matches refs below a name (`refs/heads/a/b` for `refs/heads/a`).
    if (!name || !wanted.has(name)) continue;
    const commit = type === 'commit' ? sha : peeledType === 'commit' ? peeledSha : undefined;
    if (commit) tips.set(name, { sha: commit, isHead: head === '*' });
  }
  return tips;
}

/**
 * Fetch (pruned), then make the clone's own checkout `<base>` at
 * `origin/<base>` with no local changes. Local changes in the clone itself
 * (no run works there) are stashed, never thrown away, when cleanup is on.
 * Returns the commit of `origin/<base>` and the agent branch's refs.
 */
export async function syncClone(t: TargetSection, opts: CloneOptions, state: CloneState): Promise<CloneRefs> {
  const dir = t.repo_dir;
  await git(['fetch', '--prune', '--quiet', 'origin'], { cwd: dir });
  const remoteRef = `refs/remotes/origin/${t.branch}`;
  const localRef = `refs/heads/${t.branch}`;
  const remoteAgentRef = `refs/remotes/origin/${t.agent_branch}`;
  const localAgentRef = `refs/heads/${t.agent_branch}`;
  const tips = await refTips(dir, [remoteRef, localRef, remoteAgentRef, localAgentRef]);
  const baseSha = tips.get(remoteRef)?.sha;
  if (!baseSha) throw new StepError('base_branch_missing', `base branch ${JSON.stringify(t.branch)} does not exist in ${t.clone_url}`);

  const dirty = state.action === 'existing'
    ? (await git(['status', '--porcelain', '--untracked-files=all'], { cwd: dir })).stdout.trim()
    : '';
  if (dirty) {
    if (!opts.cleanup) {
      throw new StepError('repo_dirty',
        `${dir} has local changes (${dirty.split('\n').length} paths) and watcher.cleanup_non_git_dirs is off: commit, stash or remove them by hand`);
    }
    const msg = `prompt-valet: local changes found in ${dir} at ${new Date().toISOString()}`;
    await git(['-c', 'user.name=Prompt Valet', '-c', 'user.email=prompt-valet@localhost',
      'stash', 'push', '--include-untracked', '--quiet', '-m', msg], { cwd: dir });
    state.stashed = (await git(['rev-parse', 'refs/stash'], { cwd: dir })).stdout.trim();
    opts.log.warn(`${dir} had local changes: kept them in a stash (${state.stashed}, "git stash list" there) before resetting`);
  }
  // The tree is clean now (status showed nothing, or the stash took it,
  // untracked files too), so a forced checkout alone resets index and
  // files: no `reset --hard` or `clean` after it. Already on `<base>` at
  // `origin/<base>` (most runs), there is nothing to check out.
  const local = tips.get(localRef);
  if (!(local?.isHead && local.sha === baseSha)) {
    await git(['checkout', '--quiet', '--force', '-B', t.branch, remoteRef, '--'], { cwd: dir });
  }
  const refs: CloneRefs = { baseSha };
  const remoteAgent = tips.get(remoteAgentRef)?.sha;
  const localAgent = tips.get(localAgentRef)?.sha;
  if (remoteAgent) refs.remoteAgentSha = remoteAgent;
  if (localAgent) refs.localAgentSha = localAgent;
  return refs;
}
