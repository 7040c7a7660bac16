import { spawnSync } from 'node:child_process';
import type { AgentIsolation } from './config.js';

/**
 * pv-watcher's start-up check that the agent jail can run here: bwrap must
 * exist and be allowed to make its namespaces (Ubuntu 24.04's AppArmor, a
 * container without user namespaces, `kernel.unprivileged_userns_clone=0`
 * all refuse). Starting anyway would fail every prompt; starting without the
 * jail would hand the agent every secret of the service user.
 */
export const BWRAP_CMD = 'bwrap';

/** The namespaces and mounts every jail uses, so the probe fails where a run would. */
export const BWRAP_PROBE_ARGS = [
  '--unshare-all', '--share-net', '--die-with-parent', '--new-session',
  '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/run', '--tmpfs', '/tmp',
  '--', 'true',
];

export type JailProbe = { ok: true; warning?: string } | { ok: false; message: string };

export function probeAgentJail(isolation: AgentIsolation, bwrap: string = BWRAP_CMD): JailProbe {
  if (isolation === 'none') {
    return {
      ok: true,
      warning:
        'watcher.agent_isolation is none: agents run without the jail and can read every secret of the service user (config/, /proc/*/environ, other runs); see docs/security.md',
    };
  }
  const run = spawnSync(bwrap, BWRAP_PROBE_ARGS, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'ignore', 'pipe'] });
  if (run.error) {
    const missing = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      ok: false,
      message: missing
        ? `the agent jail needs bubblewrap, and "${bwrap}" is not installed: apt-get install bubblewrap (or set watcher.agent_isolation: none to run agents unjailed, which docs/security.md advises against)`
        : `the agent jail could not start ${bwrap}: ${run.error.message}`,
    };
  }
  if (run.status !== 0) {
    const said = (run.stderr ?? '').trim().split('\n').pop() ?? '';
    return {
      ok: false,
      message: `the agent jail cannot run here (${bwrap}: ${said || `exit ${String(run.status)}`}): allow unprivileged user namespaces (Ubuntu 24.04: an AppArmor profile for bwrap, or sysctl kernel.apparmor_restrict_unprivileged_userns=0; elsewhere kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0), or set watcher.agent_isolation: none on purpose`,
    };
  }
  return { ok: true };
}
