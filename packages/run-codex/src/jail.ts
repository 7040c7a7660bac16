import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CGROUP_REFUSALS, expectErrno, lstatIfPresent,
  BWRAP_CMD,
  createRunCgroup,
  findCgroupBackend,
  StepError,
  type AppliedLimits,
  type RunCgroup,
  type ValetConfig,
} from '@prompt-valet/core';

/**
 * The agent jail (docs/security.md). Every agent run is started as
 *
 *   sh (enters the run's cgroup) → bwrap (namespaces, mounts) → prlimit → codex
 *
 * Inside: a PID namespace of its own with a fresh /proc (nothing outside is
 * visible, signalled or traced), the root read-only, /run and /tmp empty
 * tmpfs, the valet's folders (config, inbox, processed, finished,
 * repos_root), HOME and gh's/codex's own folders hidden under empty tmpfs;
 * then, on top, the run's checkout read-write, the shared clone's git
 * folder read-only (so git works in the worktree but no hook, config or
 * attribute can be planted for pv-publish), and the run's private HOME,
 * CODEX_HOME and output folder (`processed/<run>/jail/…`, at fixed paths
 * under /run/pv). The network is shared: codex must reach the model API.
 */
export const JAIL_PATHS = {
  out: '/run/pv/out',
  home: '/run/pv/home',
  codexHome: '/run/pv/codex-home',
  prompt: '/run/pv/prompt.md',
  tmp: '/tmp',
} as const;

/** The run's jail folders on the host, all under `processed/<run id>/jail/`. */
export interface HostJailDirs {
  root: string;
  out: string;
  home: string;
  tmp: string;
  codexHome: string;
}

export function hostJailDirs(runRoot: string): HostJailDirs {
  const root = path.join(runRoot, 'jail');
  return { root, out: path.join(root, 'out'), home: path.join(root, 'home'), tmp: path.join(root, 'tmp'), codexHome: path.join(root, 'codex-home') };
}

export function makeHostJailDirs(dirs: HostJailDirs): void {
  for (const dir of [dirs.root, dirs.out, dirs.home, dirs.tmp, dirs.codexHome]) {
    // A folder is ours; the agent could only have put things inside it.
    const st = lstatIfPresent(dir);
    if (st && (st.isSymbolicLink() || !st.isDirectory())) throw new StepError('foreign_path', `${dir} is not a folder (a symlink?): refusing to use it for the agent jail`);
    if (!st) fs.mkdirSync(dir, { mode: 0o700 });
  }
}

export interface JailInputs {
  config: ValetConfig;
  /** the configuration file read, if any: its folder (secrets, gh's login) is hidden */
  configPath: string | undefined;
  env: NodeJS.ProcessEnv;
  checkoutDir: string;
  /** the shared clone's git folder the worktree points into (read-only inside) */
  sharedGitDir: string | undefined;
  /** the run's copy of the prompt (read-only inside, PV_PROMPT_FILE) */
  promptFile: string;
  dirs: HostJailDirs;
}

/**
 * Folders covered by an empty tmpfs. Only existing ones (bwrap cannot make
 * a mount point on the read-only root), and none below another.
 */
export function hiddenPaths(inputs: Pick<JailInputs, 'config' | 'configPath' | 'env'>): string[] {
  const { config, configPath, env } = inputs;
  const wanted = [
    '/run', '/tmp', '/var/tmp', '/home', '/root', '/srv', '/var/lib/prompt-valet', '/etc/prompt-valet', '/etc/credstore', '/etc/credstore.encrypted',
    configPath ? path.dirname(configPath) : undefined,
    config.inbox, config.processed, config.finished, config.repos_root,
    env.HOME, env.GH_CONFIG_DIR, env.CODEX_HOME, env.CREDENTIALS_DIRECTORY, env.XDG_CONFIG_HOME, env.XDG_RUNTIME_DIR,
  ];
  const real = new Set<string>();
  for (const p of wanted) {
    if (!p || !path.isAbsolute(p)) continue;
    try {
      const r = fs.realpathSync(p);
      if (r !== '/' && fs.statSync(r).isDirectory()) real.add(r);
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ENOTDIR');
      // missing: nothing to hide
    }
  }
  // Covering one of these would take the system away from codex (a config file in /etc is covered alone: coveredFiles).
  for (const p of [...real]) if (SYSTEM_DIRS.some((sys) => sys === p || sys.startsWith(p + '/'))) real.delete(p);
  const sorted = [...real].sort((a, b) => a.length - b.length);
  return sorted.filter((p, i) => !sorted.slice(0, i).some((q) => p.startsWith(q + '/')));
}

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc', '/var', '/opt', '/proc', '/dev', '/sys', '/nix'];

/** Files covered by /dev/null: the configuration file when its folder could not be hidden. */
export function coveredFiles(inputs: Pick<JailInputs, 'config' | 'configPath' | 'env'>): string[] {
  if (!inputs.configPath) return [];
  try {
    const file = fs.realpathSync(inputs.configPath);
    const hidden = hiddenPaths(inputs);
    return hidden.some((dir) => file.startsWith(dir + '/')) ? [] : [file];
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return [];
  }
}

export interface JailLimits {
  maxProcesses: number;
  maxFileBytes: number;
}

/** bwrap's arguments up to and including `--`; the command follows. */
export function bwrapArgs(inputs: JailInputs): string[] {
  const args = [
    '--unshare-all', '--share-net', '--die-with-parent', '--new-session',
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
  ];
  const hidden = hiddenPaths(inputs);
  // /tmp stays writable (TMPDIR), its size bounded like any file the agent writes.
  for (const dir of hidden) args.push(...(dir === '/tmp' ? ['--size', String(inputs.config.watcher.agent_max_file_bytes)] : []), '--tmpfs', dir);
  for (const file of coveredFiles(inputs)) args.push('--ro-bind', '/dev/null', file);
  if (inputs.sharedGitDir) {
    const git = fs.realpathSync(inputs.sharedGitDir);
    args.push('--ro-bind', git, git);
  }
  const checkout = fs.realpathSync(inputs.checkoutDir);
  args.push('--bind', checkout, checkout);
  args.push(
    '--bind', inputs.dirs.out, JAIL_PATHS.out,
    '--bind', inputs.dirs.home, JAIL_PATHS.home,
    '--bind', inputs.dirs.codexHome, JAIL_PATHS.codexHome,
    '--ro-bind', inputs.promptFile, JAIL_PATHS.prompt,
  );
  // Read-only once the mount points above exist: nothing written there would reach the valet, but it
  // must fail loudly rather than vanish. Not recursive, so the binds inside stay as they are.
  for (const dir of hidden) if (dir !== '/tmp') args.push('--remount-ro', dir);
  args.push('--chdir', checkout, '--');
  return args;
}

/**
 * rlimits set inside the jail, after bwrap made its user namespace: the
 * kernel (5.14+) counts RLIMIT_NPROC per user namespace, so this bounds the
 * jail's processes without counting the valet's own. Outside a user
 * namespace (no jail, or bwrap run by root) only the file size limit means
 * anything; the cgroup does the rest.
 */
export function prlimitArgs(limits: JailLimits, jailed: boolean): string[] {
  return [
    'prlimit',
    ...(jailed ? [`--nproc=${limits.maxProcesses}:${limits.maxProcesses}`] : []),
    `--fsize=${limits.maxFileBytes}:${limits.maxFileBytes}`,
    '--core=0:0',
    '--',
  ];
}

export type { AppliedLimits };

export interface AgentLaunch {
  command: string;
  args: string[];
  applied: AppliedLimits;
  cgroup: RunCgroup | undefined;
}

/**
 * The command line that starts `runner args…` jailed (or not, with
 * agent_isolation none) under the run's limits.
 */
export function planAgentLaunch(inputs: JailInputs, runner: string, runnerArgs: string[], runId: string): AgentLaunch {
  const w = inputs.config.watcher;
  const jailed = w.agent_isolation === 'bwrap';
  const limits: JailLimits = { maxProcesses: w.agent_max_processes, maxFileBytes: w.agent_max_file_bytes };
  const backend = findCgroupBackend(inputs.env);
  let cgroup: RunCgroup | undefined;
  if (backend) {
    try {
      cgroup = createRunCgroup(backend, runId, { maxProcesses: w.agent_max_processes, maxMemoryBytes: w.agent_max_memory_bytes });
    } catch (err) {
      expectErrno(err, ...CGROUP_REFUSALS);
      cgroup = undefined;
    }
  }
  const applied: AppliedLimits = {
    isolation: jailed ? 'bwrap' : 'none',
    cgroup: cgroup?.kind ?? 'none',
    ...(cgroup ? cgroup.applied : {}),
    ...(jailed && process.getuid?.() !== 0 ? { rlimit_nproc: limits.maxProcesses } : {}),
    rlimit_fsize: limits.maxFileBytes,
  };
  const inner = [...prlimitArgs(limits, jailed), runner, ...runnerArgs];
  const confined = jailed ? [BWRAP_CMD, ...bwrapArgs(inputs), ...inner] : inner;
  if (!cgroup) return { command: confined[0]!, args: confined.slice(1), applied, cgroup };
  // The shell enters the cgroup and execs: nothing of the run starts outside it.
  const enter = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';
  return {
    command: '/bin/sh',
    args: ['-c', enter, 'pv-enter-cgroup', String(cgroup.procsFiles.length), ...cgroup.procsFiles, ...confined],
    applied,
    cgroup,
  };
}

