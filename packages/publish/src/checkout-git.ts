import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  git, GIT_REPOSITORY_ENV_VARS, HARDENED_GIT_OPTIONS, isErrno, ISOLATED_GIT_CONFIG_ENV, StepError, type GitOptions,
} from '@prompt-valet/core';
import { TOKEN_VARS } from './gh.js';

/**
 * git against a run's checkout, which the agent controlled and is therefore
 * hostile (docs/lifecycle.md, docs/security.md). pv-publish runs it only
 * after pv-run-codex, and with it every process of the jail, has exited.
 *
 * - The git dir is the worktree's admin folder inside the shared clone,
 *   `<repo_dir>/.git/worktrees/<run id>`, derived from the configuration,
 *   never from the checkout's `.git` file (the agent can rewrite it to point
 *   at a repository with hooks or a config of its own).
 * - Only the shared clone's own config and core's HARDENED_GIT_OPTIONS
 *   apply: for commands that read the work tree the system and the user's
 *   global config are left out (ISOLATED_GIT_CONFIG_ENV).
 */

/** git never sees the GitHub token, nor another repository's variables. */
export function publishGitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...TOKEN_VARS, ...GIT_REPOSITORY_ENV_VARS]) env[name] = undefined;
  return { ...env, ...extra };
}

export interface RunCheckout {
  /** the shared clone `repos_root/<owner>/<repo>` */
  repoDir: string;
  /** its git dir (`<repoDir>/.git`) */
  commonDir: string;
  /** the worktree's admin folder in the shared clone */
  adminDir: string;
  /** the checkout the agent worked in */
  workTree: string;
}

/**
 * Locate the run's worktree admin folder from configuration-derived paths
 * and check that git's own record of it (`gitdir`, written by
 * `git worktree add`, inside the shared clone) names this checkout.
 */
export async function locateRunCheckout(repoDir: string, workTree: string): Promise<RunCheckout> {
  const commonDir = path.join(repoDir, '.git');
  const adminDir = path.join(commonDir, 'worktrees', path.basename(workTree));
  let recorded: string;
  try {
    recorded = (await readSmallFileNoFollow(path.join(adminDir, 'gitdir'), 4096)).trim();
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ELOOP')) {
      throw new StepError('not_a_git_repo', `checkout ${workTree} is not a worktree of ${repoDir} (no ${adminDir}/gitdir)`);
    }
    throw err;
  }
  if (path.resolve(recorded) !== path.join(path.resolve(workTree), '.git')) {
    throw new StepError('not_a_git_repo', `the worktree ${adminDir} belongs to ${path.dirname(recorded)}, not to ${workTree}`);
  }
  return { repoDir, commonDir, adminDir, workTree };
}

/** git on the checkout's work tree and index, hardened as above. */
export async function worktreeGit(co: RunCheckout, args: string[], opts: Pick<GitOptions, 'input' | 'env'> = {}): Promise<string> {
  const result = await git(['--git-dir', co.adminDir, '--work-tree', co.workTree, ...HARDENED_GIT_OPTIONS, ...args], {
    cwd: co.workTree,
    env: publishGitEnv({ ...ISOLATED_GIT_CONFIG_ENV, ...opts.env }),
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
  return result.stdout;
}

/**
 * git on the shared clone's objects and refs only (push, ls-remote, diff of
 * two commits): no work tree, hooks off. The user's config applies, since a
 * push may need its credentials set-up; nothing of the checkout is read.
 */
export async function repoGit(commonDir: string, args: string[]): Promise<string> {
  const result = await git(['--git-dir', commonDir, ...HARDENED_GIT_OPTIONS, ...args], {
    cwd: path.dirname(commonDir),
    env: publishGitEnv(),
  });
  return result.stdout;
}

/**
 * Read a file by name without following a symlink, refusing anything but a
 * regular file, and at most `maxBytes` of it (the rest is cut off).
 */
export async function readSmallFileNoFollow(file: string, maxBytes: number): Promise<string> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'EISDIR' });
    const buf = Buffer.alloc(Math.min(maxBytes, st.size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}
