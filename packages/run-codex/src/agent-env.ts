import { AGENT_CGROUP_ENV, AGENT_GATE_ENV, CONFIG_HANDOFF_ENV, FORGE_TOKEN_FILE_ENV } from '@prompt-valet/core';

/**
 * The agent's environment: ours, minus every secret and every handle on the
 * valet (the agent runs untrusted work: it must never hold the GitHub
 * token, gh's login folder, the credentials folder or the claim lock), plus
 * the run's PV_* variables and a marker that every process the agent starts
 * inherits, so stragglers can be found and stopped.
 */
export interface AgentEnvVars {
  PV_RUN_ID: string;
  /** the run folder: only without the jail (inside it, processed/ is hidden) */
  PV_RUN_ROOT?: string;
  PV_PROMPT_FILE: string;
}

/** Set only by pv-run-codex, unique per agent run: see process-sweep.ts. */
export const AGENT_MARKER_VAR = 'PV_AGENT_INSTANCE';

/**
 * Never passed to the agent, whatever runner_secret_env says: where gh keeps
 * its login, systemd's credentials folder, the valet's own state, and
 * sockets of the user's session.
 */
export const VALET_ONLY_ENV = [
  'GH_CONFIG_DIR',
  'CREDENTIALS_DIRECTORY',
  'PV_CLAIM_LOCK',
  AGENT_GATE_ENV,
  'PV_CONFIG',
  CONFIG_HANDOFF_ENV,
  AGENT_CGROUP_ENV,
  FORGE_TOKEN_FILE_ENV,
  'SSH_AUTH_SOCK',
  'GPG_AGENT_INFO',
  'DBUS_SESSION_BUS_ADDRESS',
  'XDG_RUNTIME_DIR',
  'NOTIFY_SOCKET',
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'GIT_ASKPASS',
  'SSH_ASKPASS',
] as const;

/** Where the agent keeps its own state: HOME, TMPDIR and CODEX_HOME as the agent sees them. */
export interface AgentHomes {
  home: string;
  tmp: string;
  codexHome: string;
}

export function buildAgentEnv(
  base: NodeJS.ProcessEnv,
  secretNames: readonly string[],
  vars: AgentEnvVars,
  marker: string,
  homes: AgentHomes,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  const removed = new Set<string>([...secretNames, ...VALET_ONLY_ENV]);
  for (const name of Object.keys(env)) {
    if (removed.has(name)) delete env[name];
  }
  return {
    ...env,
    HOME: homes.home,
    TMPDIR: homes.tmp,
    CODEX_HOME: homes.codexHome,
    ...vars,
    [AGENT_MARKER_VAR]: marker,
  };
}
