import * as fs from 'node:fs';
import { expectErrno } from '@prompt-valet/core';

/**
 * Finding every process an agent started. Killing the agent's process group
 * is not enough: codex starts each shell command in a session of its own
 * (setsid), so a command's background children are outside the group and
 * survive even SIGKILL of codex. They do keep the environment they were
 * given, so a variable only pv-run-codex sets (unique per run) finds them in
 * /proc/<pid>/environ. Processes that are not ours cannot be read and are
 * skipped.
 */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = Buffer.from(`${name}=${value}\0`);
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let environ: Buffer;
    try {
      environ = fs.readFileSync(`/proc/${pid}/environ`);
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ESRCH', 'EACCES', 'EPERM');
      continue;
    }
    // A variable may be the first entry, so look for it after a NUL or at 0.
    const at = environ.indexOf(needle);
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) found.push(pid);
  }
  return found.filter((pid) => !processIsGone(pid));
}

/** A pid that no longer runs: gone, or only a zombie (nothing reaps orphans in some containers). */
export function processIsGone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ESRCH');
    return true;
  }
}

/** Send `signal` to a process group; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    expectErrno(err, 'ESRCH', 'EPERM');
    return false;
  }
}

export function signalPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      expectErrno(err, 'ESRCH', 'EPERM');
      // already gone
    }
  }
}
