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

async function isClone(dir: string): Promise<boolean> {
  try {
    const st = await fsp.lstat(dir);
    if (!st.isDirectory()) return false;
    await fsp.lstat(path.join(dir, '.git'));
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
  // A folder with a .git of its own, and git agrees it is the top.
  try {
    const top = (await git(['rev-parse', '--show-toplevel'], { cwd: dir })).stdout.trim();
    return (await fsp.realpath(top)) === (await fsp.realpath(dir));
  } catch (err) {
    if (err instanceof GitError) return false;
    throw err;
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
  if (!(await isClone(dir))) {
    problem = { code: 'not_a_git_repo', message: `${dir} exists but is not a git repository` };
  } else {
    let origin = '';
    try {
      origin = (await git(['config', '--get', 'remote.origin.url'], { cwd: dir })).stdout.trim();
    } catch (err) {
      if (!(err instanceof GitError)) throw err;
    }
    if (!sameRemote(origin, t.clone_url)) {
      problem = { code: 'origin_mismatch', message: `${dir} is a clone of ${origin || '(no origin)'}, not ${t.clone_url}` };
    }
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

/**
 * Fetch (pruned), then make the clone's own checkout `<base>` at
 * `origin/<base>` with no local changes. Local changes in the clone itself
 * (no run works there) are stashed, never thrown away, when cleanup is on.
 * Returns the commit of `origin/<base>`.
 */
export async function syncClone(t: TargetSection, opts: CloneOptions, state: CloneState): Promise<string> {
  const dir = t.repo_dir;
  await git(['fetch', '--prune', '--quiet', 'origin'], { cwd: dir });
  const remoteRef = `refs/remotes/origin/${t.branch}`;
  let baseSha: string;
  try {
    baseSha = (await git(['rev-parse', '--verify', '--quiet', `${remoteRef}^{commit}`], { cwd: dir })).stdout.trim();
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    throw new StepError('base_branch_missing', `base branch ${JSON.stringify(t.branch)} does not exist in ${t.clone_url}`);
  }

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
  await git(['checkout', '--quiet', '--force', '-B', t.branch, remoteRef, '--'], { cwd: dir });
  await git(['reset', '--quiet', '--hard', remoteRef], { cwd: dir });
  await git(['clean', '-ffd', '--quiet'], { cwd: dir });
  return baseSha;
}
