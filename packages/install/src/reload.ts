import * as fs from 'node:fs';

/**
 * `systemctl reload codex-watcher` right after a start used to reach
 * pv-watcher before it had a SIGHUP handler, and SIGHUP's default action
 * ended it. The reload now waits until the process catches SIGHUP (bit 0 of
 * SigCgt in /proc/<pid>/status), then sends it.
 */
export function catchesSighup(pid: number): boolean | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // gone
  }
  const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
}

export type ReloadOutcome = 'sent' | 'gone' | 'not_ready';

export async function sendReload(pid: number, timeoutMs = 10_000): Promise<ReloadOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = catchesSighup(pid);
    if (ready === undefined) return 'gone';
    if (ready) {
      process.kill(pid, 'SIGHUP');
      return 'sent';
    }
    if (Date.now() >= deadline) return 'not_ready';
    await new Promise((r) => setTimeout(r, 100));
  }
}
