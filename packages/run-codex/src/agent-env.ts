/**
 * The agent's environment: ours, minus every publishing secret (the agent
 * runs untrusted work and must never hold the GitHub token; only pv-publish
 * does), plus the run's PV_* variables and a marker that every process the
 * agent starts inherits, so stragglers can be found and stopped.
 */
export interface AgentEnvVars {
  PV_RUN_ID: string;
  PV_RUN_ROOT: string;
  PV_PROMPT_FILE: string;
}

/** Set only by pv-run-codex, unique per agent run: see process-sweep.ts. */
export const AGENT_MARKER_VAR = 'PV_AGENT_INSTANCE';

export function buildAgentEnv(
  base: NodeJS.ProcessEnv,
  secretNames: readonly string[],
  vars: AgentEnvVars,
  marker: string,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  const secrets = new Set(secretNames);
  for (const name of Object.keys(env)) {
    if (secrets.has(name)) delete env[name];
  }
  return { ...env, ...vars, [AGENT_MARKER_VAR]: marker };
}
