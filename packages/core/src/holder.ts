import * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * Who holds a claim: enough to tell later whether that process still lives.
 * A pid alone is not enough (pids are reused, and a reboot starts over), so
 * the holder also records the process's start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot) and the boot id.
 */
export interface Holder {
  pid: number;
  /** start time of the process in clock ticks since boot; 0 if unknown */
  start_ticks: number;
  /** /proc/sys/kernel/random/boot_id; '' if unknown */
  boot_id: string;
  host: string;
  /** when set, the claim is alive while any process of this group lives */
  pgid?: number;
}

export function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTicks: number;
}

/** Fields of /proc/<pid>/stat, or undefined when the process is gone. */
function readProcStat(pid: number | string): ProcStat | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces
  // or parentheses: split after the last ")". rest[0] is field 3 (state),
  // rest[2] field 5 (pgrp), rest[19] field 22 (starttime).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '?', pgrp: Number(rest[2]), startTicks: Number(rest[19]) };
}

/**
 * Start time of a live `pid` in clock ticks since boot, or undefined if it is
 * gone. A zombie counts as gone: it will never finish a claim (and where
 * PID 1 does not reap orphans, zombies linger).
 */
export function processStartTicks(pid: number): number | undefined {
  const st = readProcStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return undefined;
  return Number.isFinite(st.startTicks) ? st.startTicks : undefined;
}

/** Process group of `pid` (field 5 of /proc/<pid>/stat), or undefined. */
export function processGroupOf(pid: number): number | undefined {
  const st = readProcStat(pid);
  return st && Number.isFinite(st.pgrp) ? st.pgrp : undefined;
}

export function holderFor(pid: number): Holder {
  return { pid, start_ticks: processStartTicks(pid) ?? 0, boot_id: bootId(), host: os.hostname() };
}

/**
 * The holder of a claim made by this process: its process group. A pipeline
 * (`pv-claim | … | pv-settle`, from a shell with job control or from
 * pv-watcher, which starts each pipeline in a group of its own) is one
 * process group, so the claim counts as held while any step of that pipeline
 * still runs, and as dead once the whole pipeline is gone.
 */
export function pipelineHolder(): Holder {
  const pgid = processGroupOf(process.pid) ?? process.pid;
  return { ...holderFor(pgid), pgid };
}

export type Liveness = 'alive' | 'dead' | 'unknown';

/**
 * Is the holder still running? A holder on another host cannot be checked
 * from here: 'unknown', and callers leave its claims alone.
 */
export function holderLiveness(h: Holder): Liveness {
  if (h.host !== os.hostname()) return 'unknown';
  const boot = bootId();
  if (h.boot_id && boot && h.boot_id !== boot) return 'dead'; // rebooted since
  if (h.pgid !== undefined && groupAlive(h.pgid)) {
    // The group leader may have exited while later steps still run; a
    // reused pgid would need a new leader with the same pid: check it.
    const ticks = processStartTicks(h.pgid);
    if (ticks === undefined || !h.start_ticks || ticks === h.start_ticks) return 'alive';
    return 'dead';
  }
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  const ticks = processStartTicks(h.pid);
  if (ticks === undefined) return 'dead';
  if (h.start_ticks && ticks !== h.start_ticks) return 'dead'; // pid reused
  return 'alive';
}

/** Live (non-zombie) processes of group `pgid`, with their command lines. */
export function processesInGroup(pgid: number): { pid: number; cmdline: string[] }[] {
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readProcStat(entry);
    if (!st || st.pgrp !== pgid || st.state === 'Z' || st.state === 'X') continue;
    let cmdline: string[] = [];
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // exited meanwhile
    }
    out.push({ pid: Number(entry), cmdline });
  }
  return out;
}

/** Does any live (non-zombie) process belong to group `pgid`? */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // kill(2) also answers for zombies: look for a live member.
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readProcStat(entry);
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') return true;
  }
  return false;
}
