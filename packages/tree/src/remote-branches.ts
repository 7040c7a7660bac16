import { spawn, type ChildProcess } from 'node:child_process';
import { forgeGitEnv, GitError, gitEnv, redactCredentials } from '@prompt-valet/core';

/**
 * The branches that exist upstream, asked of the remote itself with
 * `git ls-remote --heads origin`: one round trip, no objects transferred,
 * nothing written to the clone (so it never takes a lock that pv-clone or a
 * running agent holds), and a branch deleted upstream is gone at once.
 * See README "Why ls-remote". (An origin on this machine is read in-process
 * instead when it is plain: branch-listing.ts decides, local-refs.ts reads.)
 *
 * Node forks slowly (it copies a large process; ~7 ms a spawn measured here,
 * more than the ls-remote itself), so pv-tree does not spawn git once per
 * repository. It starts a few small `sh` workers instead; each reads one
 * clone path per line on stdin, runs git for it and ends git's output with
 * a \x1f line holding the exit status. Node hands a worker its next path
 * when the previous one is done, so a slow remote holds up one worker only.
 */
export const REMOTE = 'origin';
/** A remote that does not answer within this time counts as failed for this pass. */
export const LS_REMOTE_TIMEOUT_MS = 60_000;

export type BranchListing = { ok: true; branches: string[] } | { ok: false; reason: string; retryable: boolean };

const END = '\x1f';
// Two lines per repository: the folder git runs in, and the remote (origin,
// or the clone URL of a repository not cloned yet).
const WORKER_SCRIPT = `while IFS= read -r dir && IFS= read -r remote; do git -C "$dir" ls-remote --heads "$remote" 2>&1; printf '${END}%s\\n' "$?"; done`;
const COMMAND = `git ls-remote --heads`;

/** What to ask: `git -C dir ls-remote --heads remote`. */
export interface ListTarget {
  dir: string;
  /** `origin` for a clone; a clone URL (built from checked names) for an upstream-only repository */
  remote: string;
}
/** A worker that dies this many times in a row without finishing a repository means sh or git cannot run. */
const MAX_WORKER_DEATHS = 3;

/** `<sha>\trefs/heads/<name>` lines → names; any other line is git's stderr. */
export function parseLsRemoteOutput(text: string): { branches: string[]; other: string } {
  const branches: string[] = [];
  const other: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^[0-9a-f]{40,64}\trefs\/heads\/(.+)$/.exec(line);
    if (m) branches.push(m[1]!);
    else other.push(line);
  }
  return { branches, other: other.join('\n') };
}

function toListing(remote: string, output: string, exitCode: number | undefined, timedOut: boolean): BranchListing {
  const { branches, other } = parseLsRemoteOutput(output);
  if (exitCode === 0 && !timedOut) return { ok: true, branches };
  const stderr = exitCode === 127 ? 'git is not installed (not found on PATH)' : timedOut ? `no answer within ${LS_REMOTE_TIMEOUT_MS / 1000} s` : redactCredentials(other);
  const err = new GitError(`${COMMAND} ${redactCredentials(remote)}`, exitCode, stderr, timedOut);
  return { ok: false, reason: err.message, retryable: err.retryable };
}

export interface ListOptions {
  workers: number;
  timeoutMs?: number;
  /** the environment git runs with; default gitEnv() and the forge token (gitRunEnv) */
  env?: NodeJS.ProcessEnv;
  /** called as each repository's answer arrives (its promise is awaited before the call returns) */
  onListing?: (index: number, listing: BranchListing) => Promise<void>;
}

/**
 * The environment of every git pv-tree starts: core's gitEnv and the forge
 * token (private repositories) for these git processes only (core
 * forge-token.ts). Throws ForgeTokenError.
 */
export function gitRunEnv(): NodeJS.ProcessEnv {
  return { ...gitEnv(), ...forgeGitEnv(process.env) };
}

/** List the branches of each target's remote with git; answers in input order. */
export async function listRemoteBranches(dirs: readonly ListTarget[], opts: ListOptions): Promise<BranchListing[]> {
  const timeoutMs = opts.timeoutMs ?? LS_REMOTE_TIMEOUT_MS;
  const results = new Array<BranchListing>(dirs.length);
  const pending: Promise<void>[] = [];
  if (dirs.length === 0) return results;
  const env = opts.env ?? gitRunEnv();
  let next = 0;
  let done = 0;
  let deathsInARow = 0;

  return new Promise<BranchListing[]>((resolveAll) => {
    const finish = (index: number, listing: BranchListing) => {
      results[index] = listing;
      if (opts.onListing) pending.push(opts.onListing(index, listing));
      done++;
      if (done === dirs.length) void Promise.all(pending).then(() => resolveAll(results));
    };

    const startWorker = () => {
      // Its own process group, so a timed-out git and its helpers die with it.
      const child: ChildProcess = spawn('/bin/sh', ['-c', WORKER_SCRIPT], { env, stdio: ['pipe', 'pipe', 'ignore'], detached: true });
      let buffer = '';
      let current = -1;
      let timer: NodeJS.Timeout | undefined;
      let ended = false;

      const kill = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const dispatch = () => {
        if (next >= dirs.length) {
          ended = true;
          child.stdin?.end();
          return;
        }
        current = next++;
        timer = setTimeout(() => {
          const index = current;
          current = -1;
          ended = true;
          kill();
          finish(index, toListing(dirs[index]!.remote, buffer, undefined, true));
          startWorker();
        }, timeoutMs);
        child.stdin?.write(`${dirs[current]!.dir}\n${dirs[current]!.remote}\n`);
      };

      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => {
        buffer += chunk;
        for (;;) {
          const mark = buffer.indexOf(END);
          if (mark < 0) return;
          const nl = buffer.indexOf('\n', mark);
          if (nl < 0) return;
          const code = Number(buffer.slice(mark + 1, nl));
          const output = buffer.slice(0, mark);
          buffer = buffer.slice(nl + 1);
          clearTimeout(timer);
          if (current < 0) continue;
          const index = current;
          current = -1;
          deathsInARow = 0;
          finish(index, toListing(dirs[index]!.remote, output, code, false));
          dispatch();
        }
      });
      child.stdin?.on('error', () => {
        // a worker that died is handled on 'close'
      });
      child.on('error', () => {
        // spawn failure: 'close' follows
      });
      child.on('close', () => {
        clearTimeout(timer);
        if (ended && current < 0) return;
        // The worker died under a repository (killed from outside, or sh missing).
        const index = current;
        current = -1;
        if (index >= 0) finish(index, { ok: false, reason: `${COMMAND}: the worker shell exited unexpectedly`, retryable: true });
        if (++deathsInARow >= MAX_WORKER_DEATHS) {
          while (next < dirs.length) finish(next++, { ok: false, reason: `${COMMAND}: cannot run /bin/sh workers`, retryable: false });
          return;
        }
        if (next < dirs.length) startWorker();
      });
      dispatch();
    };

    const width = Math.max(1, Math.min(opts.workers, dirs.length));
    for (let i = 0; i < width; i++) startWorker();
  });
}
