import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/**
 * A lock per repository clone, shared by every tool that changes the clone
 * (fetch, reset, worktree add/remove). It is a kernel flock(2) on
 * `<repos_root>/.locks/<owner>/<repo>.lock`, taken by `/usr/bin/flock` on a
 * file descriptor this process opened and lent to it: the lock belongs to the
 * open file, so it stays held after flock(1) exits and is released when this
 * process closes the file — or dies, so a crash never leaves a stale lock.
 * The lock file lives outside the clone so a missing clone can be locked too.
 */
export function repoLockPath(reposRoot: string, owner: string, repo: string): string {
  return path.join(reposRoot, '.locks', owner, `${repo}.lock`);
}

export class RepoLockError extends Error {
  readonly code = 'repo_lock_timeout';
  readonly retryable = true;
  constructor(message: string) {
    super(message);
    this.name = 'RepoLockError';
  }
}

export interface RepoLock {
  release(): Promise<void>;
}

/** Wait up to `timeoutMs` for the lock (RepoLockError, retryable, after that). */
export async function lockRepo(lockFile: string, timeoutMs = 10 * 60_000): Promise<RepoLock> {
  await fsp.mkdir(path.dirname(lockFile), { recursive: true });
  const fh = await fsp.open(lockFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('flock', ['--exclusive', '--wait', String(Math.max(1, Math.ceil(timeoutMs / 1000))), '3'], {
        stdio: ['ignore', 'ignore', 'pipe', fh.fd],
      });
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', (err) => reject(new Error(`cannot run flock (util-linux): ${err.message}`)));
      child.once('exit', (c) => (c === 0 || c === 1 ? resolve(c) : reject(new Error(`flock ${lockFile}: ${stderr.trim() || `exit ${c}`}`))));
    });
    if (code !== 0) throw new RepoLockError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for the lock ${lockFile}`);
  } catch (err) {
    await fh.close();
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await fh.close();
    },
  };
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
