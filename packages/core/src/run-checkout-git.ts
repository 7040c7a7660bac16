import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isErrno } from './files.js';
import { FORGE_TOKEN_ENV_VARS } from './forge-token.js';
import { git, type GitOptions } from './git.js';
import { GIT_REPOSITORY_ENV_VARS, HARDENED_GIT_OPTIONS, ISOLATED_GIT_CONFIG_ENV } from './git-hardening.js';
import { StepError } from './records.js';

/**
 * git against a run's checkout, which the agent controlled and is therefore
 * hostile (docs/lifecycle.md, docs/security.md). pv-run-codex (its cut-file
 * check) and pv-publish run it only once the agent, and with it every
 * process of the jail, has exited.
 *
 * - The git dir is the worktree's admin folder inside the shared clone,
 *   `<repo_dir>/.git/worktrees/<run id>`, derived from the configuration,
 *   never from the checkout's `.git` file (the agent can rewrite it to point
 *   at a repository with hooks or a config of its own).
 * - Only the shared clone's own config and core's HARDENED_GIT_OPTIONS
 *   apply: for commands that read the work tree the system and the user's
 *   global config are left out (ISOLATED_GIT_CONFIG_ENV).
 */

/** git never sees the forge token, nor another repository's variables. */
export function runCheckoutGitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...FORGE_TOKEN_ENV_VARS, ...GIT_REPOSITORY_ENV_VARS]) env[name] = undefined;
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
export async function worktreeGit(co: RunCheckout, args: string[], opts: Pick<GitOptions, 'input' | 'env' | 'stdoutEncoding'> = {}): Promise<string> {
  const result = await git(['--git-dir', co.adminDir, '--work-tree', co.workTree, ...HARDENED_GIT_OPTIONS, ...args], {
    cwd: co.workTree,
    env: runCheckoutGitEnv({ ...ISOLATED_GIT_CONFIG_ENV, ...opts.env }),
    ...(opts.input === undefined ? {} : { input: opts.input }),
    ...(opts.stdoutEncoding === undefined ? {} : { stdoutEncoding: opts.stdoutEncoding }),
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
    env: runCheckoutGitEnv(),
  });
  return result.stdout;
}

/** A path `git status` names: changed in the index or the work tree, or untracked (never an ignored one). */
export interface StatusPath {
  /** relative to the work tree, as git spells it (a folder git does not enter, a nested repository, ends in `/`), read as UTF-8 */
  path: string;
  /** the same path's bytes: the name on disk, also when it is not UTF-8 (`path` then holds U+FFFD) */
  pathBytes: Buffer;
  /** deleted: the path is not in the work tree (nor, for a staged deletion, in the index) */
  deleted: boolean;
}

export interface WorktreeStatus {
  /** the commit HEAD is at (only with `branch`) */
  head: string | undefined;
  /** the branch HEAD is on (short name), undefined when detached or without `branch` */
  branch: string | undefined;
  /** paths changed in the work tree or the index, gitlinks included, and untracked paths: what `git add --all` takes */
  changed: StatusPath[];
}

/**
 * The checkout's changed and untracked paths (and, with `branch`, HEAD and
 * its branch) in one `git status --porcelain=v2 -z`: NUL-separated, so a
 * path with spaces or newlines comes through as it is. Every untracked file
 * is listed on its own (not its folder), ignored files never, and
 * submodules are compared too.
 */
export async function worktreeStatus(co: RunCheckout, opts: { branch?: boolean } = {}): Promise<WorktreeStatus> {
  const out = await worktreeGit(co, ['status', '--porcelain=v2', ...(opts.branch ? ['--branch'] : []), '-z',
    '--untracked-files=all', '--ignore-submodules=none'], { stdoutEncoding: 'latin1' });
  return parseStatusPorcelainV2(out);
}

/**
 * Parse `git status --porcelain=v2 -z` output, decoded as latin1 (a
 * character a byte, so a path that is not UTF-8 keeps its bytes). Entries
 * it does not know are skipped, as the format may grow.
 */
export function parseStatusPorcelainV2(out: string): WorktreeStatus {
  let head: string | undefined;
  let branch: string | undefined;
  const changed: StatusPath[] = [];
  const entries = out.split('\0');
  // The path is the last field: after 8 fields in an ordinary entry, 9 in a rename (whose source follows as an entry of its own), 10 in an unmerged one.
  const pathAfter = (entry: string, fields: number): string => {
    let at = 0;
    for (let i = 0; i < fields; i++) {
      const space = entry.indexOf(' ', at);
      if (space < 0) return entry;
      at = space + 1;
    }
    return entry.slice(at);
  };
  // `1 XY …` / `2 XY …`: X is the index's state, Y the work tree's; D is deleted there.
  const deletedIn = (entry: string): boolean => entry[2] === 'D' || entry[3] === 'D';
  const utf8 = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');
  const add = (latin1Path: string, deleted: boolean) => {
    const pathBytes = Buffer.from(latin1Path, 'latin1');
    changed.push({ path: pathBytes.toString('utf8'), pathBytes, deleted });
  };
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.startsWith('# branch.oid ')) head = e.slice('# branch.oid '.length);
    else if (e.startsWith('# branch.head ')) {
      const name = utf8(e.slice('# branch.head '.length));
      branch = name === '(detached)' ? undefined : name;
    } else if (e.startsWith('? ')) add(e.slice(2), false);
    else if (e.startsWith('1 ')) add(pathAfter(e, 8), deletedIn(e));
    else if (e.startsWith('2 ')) {
      add(pathAfter(e, 9), deletedIn(e));
      i++;
    } else if (e.startsWith('u ')) add(pathAfter(e, 10), false);
  }
  return { head, branch, changed };
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
