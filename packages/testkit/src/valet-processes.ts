import * as fs from 'node:fs';
import { isErrno } from '@prompt-valet/core';
import { waitFor } from './run-bin.js';

/**
 * A process that is not the valet's to look at: it exited between listing
 * /proc and reading it (ENOENT, ESRCH), or it is one whose environment this
 * test may not read (EACCES, EPERM: init, or another container's).
 */
const NOT_OURS = ['ENOENT', 'ESRCH', 'EACCES', 'EPERM'];

function environOf(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return undefined; // a zombie runs nothing
    return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch (err) {
    if (NOT_OURS.some((code) => isErrno(err, code))) return undefined;
    throw err;
  }
}

/**
 * Live processes of the valet whose config is `configPath`: every pv-* tool,
 * agent and stand-in inherits PV_CONFIG. `also` narrows them by another
 * environment entry (e.g. `PV_CLAIM_LOCK=`: only pipelines).
 */
export function valetProcesses(configPath: string, also?: (envEntry: string) => boolean): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const env = environOf(Number(entry));
    if (env?.includes(`PV_CONFIG=${configPath}`) && (!also || env.some(also))) out.push(Number(entry));
  }
  return out;
}

/** SIGKILL `list()` until it is empty: a process may start a child while we kill. */
export async function killAllOf(what: string, list: () => number[], timeoutMs = 30_000, everyMs = 100): Promise<void> {
  await waitFor(`every ${what} gone`, () => {
    const left = list();
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if (!isErrno(err, 'ESRCH')) throw err; // exited meanwhile
      }
    }
    return left.length === 0;
  }, timeoutMs, everyMs);
}
