import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno } from './files.js';

/**
 * One cgroup per agent run, so that a fork bomb or a memory hog trips its
 * own limit and nothing else (RLIMIT_NPROC counts per user, so outside a
 * user namespace it would starve the watcher and the other runs).
 *
 * cgroup v2 (the target: Debian 12 under systemd): the unit needs
 * `Delegate=yes` (the service user then owns its cgroup) and must not set
 * `ProtectControlGroups=yes` (it mounts /sys/fs/cgroup read-only). A cgroup
 * with processes cannot enable controllers for its children ("no internal
 * processes"), so pv-watcher moves itself into `<unit>/supervisor` at start
 * (`prepareAgentCgroups`), enables pids and memory for `<unit>/runs`, and
 * tells the pipelines where that is (PV_AGENT_CGROUP). Each run is then
 * `<unit>/runs/<run id>`, a sibling of the valet's own processes.
 *
 * cgroup v1 (older systems, and this project's test machines): a writable
 * pids (and memory) hierarchy is used the same way.
 *
 * Nothing here is fatal: without a usable cgroup the run goes on under the
 * jail's rlimits, and `limits.cgroup` in its status says `none`.
 */
export const AGENT_CGROUP_ENV = 'PV_AGENT_CGROUP';
const CGROUP_ROOT = '/sys/fs/cgroup';

export type CgroupBackend =
  | { kind: 'v2'; runs: string }
  | { kind: 'v1'; pidsRuns: string; memoryRuns: string | undefined };

export interface RunCgroupLimits {
  maxProcesses: number;
  maxMemoryBytes: number;
}

export interface RunCgroup {
  kind: CgroupBackend['kind'];
  /** the cgroup.procs files a process writes its pid into to enter the run's cgroup */
  procsFiles: string[];
  /** which limits the kernel enforces for this run */
  applied: { pids_max: number; memory_max?: number };
  /** whether a limit stopped something (pids.max reached, an OOM kill) */
  tripped(): { processes: boolean; memory: boolean };
  /** SIGKILL every process left in it, then remove it (bounded wait) */
  remove(): Promise<void>;
}

/** Our cgroup path for `controller` (v1), or the unified one (`0::/path`) when undefined. */
function ownCgroupPath(controller: string | undefined, procCgroup: string): string | undefined {
  for (const line of procCgroup.split('\n')) {
    const [, , controllers, p] = /^(\d+):([^:]*):(.*)$/.exec(line) ?? [];
    if (p === undefined || controllers === undefined) continue;
    if (controller === undefined ? controllers === '' : controllers.split(',').includes(controller)) return p;
  }
  return undefined;
}

/** What the kernel answers a cgroup operation it will not do here (no controller, no delegation, a process gone): the run goes on without that limit. */
export const CGROUP_REFUSALS = ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EINVAL', 'EBUSY', 'ENODEV', 'EOPNOTSUPP', 'ENOSPC', 'ESRCH'];

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch (err) {
    expectErrno(err, 'EACCES', 'EPERM', 'EROFS', 'ENOENT');
    return false;
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    expectErrno(err, ...CGROUP_REFUSALS);
    return '';
  }
}

/**
 * Called once by pv-watcher at start (cgroup v2 only). Returns the runs
 * cgroup it prepared, or why there is none (one line, for the log).
 */
export function prepareAgentCgroups(): { runs: string } | { reason: string; cgroupV2: boolean } {
  if (!fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'))) return { reason: 'no cgroup v2 at /sys/fs/cgroup', cgroupV2: false };
  const own = ownCgroupPath(undefined, readText('/proc/self/cgroup'));
  if (own === undefined) return { reason: 'no cgroup v2 entry in /proc/self/cgroup', cgroupV2: false };
  const unit = path.join(CGROUP_ROOT, own.replace(/\/supervisor$/, ''));
  if (!writable(unit)) return { reason: `${unit} is not writable: the unit needs Delegate=yes and no ProtectControlGroups=yes`, cgroupV2: true };
  const controllers = readText(path.join(unit, 'cgroup.controllers')).split(/\s+/);
  if (!controllers.includes('pids') || !controllers.includes('memory')) {
    return { reason: `${unit} has no pids and memory controllers (cgroup.controllers: ${controllers.join(' ').trim()}): the unit needs Delegate=yes`, cgroupV2: true };
  }
  try {
    const supervisor = path.join(unit, 'supervisor');
    fs.mkdirSync(supervisor, { recursive: true });
    // Every process of the unit's own cgroup moves, so it can delegate controllers.
    for (const pid of readText(path.join(unit, 'cgroup.procs')).split('\n').filter(Boolean)) {
      try {
        fs.writeFileSync(path.join(supervisor, 'cgroup.procs'), pid);
      } catch (err) {
        expectErrno(err, ...CGROUP_REFUSALS);
        // gone meanwhile
      }
    }
    fs.writeFileSync(path.join(unit, 'cgroup.subtree_control'), '+pids +memory');
    const runs = path.join(unit, 'runs');
    fs.mkdirSync(runs, { recursive: true });
    fs.writeFileSync(path.join(runs, 'cgroup.subtree_control'), '+pids +memory');
    return { runs };
  } catch (err) {
    return { reason: `cannot prepare run cgroups under ${unit}: ${(err as Error).message}`, cgroupV2: true };
  }
}

/** Where run cgroups can be made for this process, or undefined. */
export function findCgroupBackend(env: NodeJS.ProcessEnv, procCgroup = readText('/proc/self/cgroup')): CgroupBackend | undefined {
  const runs = env[AGENT_CGROUP_ENV];
  if (runs && path.isAbsolute(runs) && writable(runs) && fs.existsSync(path.join(runs, 'cgroup.subtree_control'))) {
    return { kind: 'v2', runs };
  }
  const pids = ownCgroupPath('pids', procCgroup);
  if (pids === undefined) return undefined;
  const pidsRuns = v1RunsDir('pids', pids);
  if (!pidsRuns) return undefined;
  const memory = ownCgroupPath('memory', procCgroup);
  return { kind: 'v1', pidsRuns, memoryRuns: memory === undefined ? undefined : v1RunsDir('memory', memory) };
}

function v1RunsDir(controller: string, own: string): string | undefined {
  const dir = path.join(CGROUP_ROOT, controller, own, 'prompt-valet-runs');
  try {
    fs.mkdirSync(dir, { recursive: true });
    return writable(dir) ? dir : undefined;
  } catch (err) {
    expectErrno(err, ...CGROUP_REFUSALS);
    return undefined;
  }
}

/**
 * Run cgroups whose pv-run-codex died (SIGKILL, a crash) stay behind;
 * the kernel frees one only on rmdir, which fails while it has processes.
 */
function sweepStaleRunCgroups(runsDir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(runsDir);
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return;
  }
  for (const entry of entries) {
    const owner = /^\d{8}-\d{6}-\d{3}-[0-9a-z]+-(\d+)$/.exec(entry)?.[1];
    if (!owner || processAlive(Number(owner))) continue;
    try {
      fs.rmdirSync(path.join(runsDir, entry));
    } catch (err) {
      expectErrno(err, 'EBUSY', 'ENOENT', 'ENOTEMPTY');
      // still busy: a later sweep
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function createRunCgroup(backend: CgroupBackend, runId: string, limits: RunCgroupLimits): RunCgroup {
  for (const dir of backend.kind === 'v2' ? [backend.runs] : [backend.pidsRuns, backend.memoryRuns]) if (dir) sweepStaleRunCgroups(dir);
  // A try of a resumed run may find the cgroup of the one before.
  const name = `${runId}-${process.pid}`;
  if (backend.kind === 'v2') {
    const dir = path.join(backend.runs, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.maxProcesses));
    fs.writeFileSync(path.join(dir, 'memory.max'), String(limits.maxMemoryBytes));
    // Above memory.max the kernel kills the whole run, not one process of it.
    tryWrite(path.join(dir, 'memory.oom.group'), '1');
    tryWrite(path.join(dir, 'memory.swap.max'), '0');
    return {
      kind: 'v2',
      procsFiles: [path.join(dir, 'cgroup.procs')],
      applied: { pids_max: limits.maxProcesses, memory_max: limits.maxMemoryBytes },
      tripped: () => ({
        processes: eventCount(path.join(dir, 'pids.events'), 'max') > 0,
        // Only a kill counts: reaching memory.max while reclaiming page cache is normal for a build.
        memory: eventCount(path.join(dir, 'memory.events'), 'oom_kill') > 0,
      }),
      remove: () => removeCgroups([dir], (d) => tryWrite(path.join(d, 'cgroup.kill'), '1')),
    };
  }
  const pidsDir = path.join(backend.pidsRuns, name);
  fs.mkdirSync(pidsDir, { recursive: true });
  fs.writeFileSync(path.join(pidsDir, 'pids.max'), String(limits.maxProcesses));
  const dirs = [pidsDir];
  let memoryDir: string | undefined;
  if (backend.memoryRuns) {
    memoryDir = path.join(backend.memoryRuns, name);
    try {
      fs.mkdirSync(memoryDir, { recursive: true });
      fs.writeFileSync(path.join(memoryDir, 'memory.limit_in_bytes'), String(limits.maxMemoryBytes));
      dirs.push(memoryDir);
    } catch (err) {
      expectErrno(err, ...CGROUP_REFUSALS);
      memoryDir = undefined;
    }
  }
  const memDir = memoryDir;
  return {
    kind: 'v1',
    procsFiles: dirs.map((d) => path.join(d, 'cgroup.procs')),
    applied: memDir ? { pids_max: limits.maxProcesses, memory_max: limits.maxMemoryBytes } : { pids_max: limits.maxProcesses },
    tripped: () => ({
      processes: eventCount(path.join(pidsDir, 'pids.events'), 'max') > 0,
      memory: memDir !== undefined && eventCount(path.join(memDir, 'memory.oom_control'), 'oom_kill') > 0,
    }),
    remove: () => removeCgroups(dirs, (d) => killProcs(path.join(d, 'cgroup.procs'))),
  };
}

function tryWrite(file: string, text: string): void {
  try {
    fs.writeFileSync(file, text);
  } catch (err) {
    expectErrno(err, ...CGROUP_REFUSALS);
    // an optional knob this kernel lacks
  }
}

/** `key N` in a cgroup events file. */
function eventCount(file: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readText(file));
  return m ? Number(m[1]) : 0;
}

function killProcs(procsFile: string): void {
  for (const pid of readText(procsFile).split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch (err) {
      expectErrno(err, 'ESRCH');
      // gone
    }
  }
}

async function removeCgroups(dirs: string[], kill: (dir: string) => void): Promise<void> {
  for (const dir of dirs) {
    const deadline = Date.now() + 5000;
    for (;;) {
      kill(dir);
      try {
        fs.rmdirSync(dir);
        break;
      } catch (err) {
        // EBUSY while the killed processes are still being reaped
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
}
