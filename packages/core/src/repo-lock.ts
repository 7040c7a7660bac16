import * as path from 'node:path';
import { takeLock } from './claim-lock.js';
import { PvError } from './errors.js';

/**
 * A lock per repository clone, shared by every tool that changes the clone
 * (fetch, reset, worktree add/remove). It is a kernel flock(2) on
 * `<repos_root>/.locks/<owner>/<repo>.lock`, taken by `/usr/bin/flock` on a
 * file descriptor this process opened and lent to it (core `takeLock`): it is
 * released when this process closes the file — or dies, so a crash never
 * leaves a stale lock.
 * The lock file lives outside the clone so a missing clone can be locked too.
 */
export function repoLockPath(reposRoot: string, owner: string, repo: string): string {
  return path.join(reposRoot, '.locks', owner, `${repo}.lock`);
}

export class RepoLockError extends PvError {
  constructor(message: string) {
    super('repo_lock_timeout', message, { retryable: true });
  }
}

export interface RepoLock {
  release(): Promise<void>;
}

/** Wait up to `timeoutMs` for the lock (RepoLockError, retryable, after that). */
export async function lockRepo(lockFile: string, timeoutMs = 10 * 60_000): Promise<RepoLock> {
  const lock = await takeLock(lockFile, { wait: Math.max(1, Math.ceil(timeoutMs / 1000)) });
  if (!lock) throw new RepoLockError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for the lock ${lockFile}`);
  return lock;
}

/** Run `fn` holding the repository's lock. */
export async function withRepoLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
  const lock = await lockRepo(lockFile, timeoutMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
