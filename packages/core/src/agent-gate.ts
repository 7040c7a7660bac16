/**
 * The agent gate (docs/lifecycle.md, "Agent slots"): the channel between
 * pv-watcher and the pv-run-codex of each pipeline it starts, over which
 * pv-run-codex asks for one of the watcher.max_parallel agent slots before
 * it starts an agent and hands it back when the agent has ended.
 *
 * It is one end of a UNIX socketpair the watcher gives the pipeline's shell
 * at AGENT_GATE_FD; every step but pv-run-codex has it closed. Lines, one
 * per message:
 *
 *   pv-run-codex → watcher   {"gate":"wait","run_id":"…"}   may I start an agent?
 *   watcher → pv-run-codex   go                             yes: the slot is yours
 *   pv-run-codex → watcher   {"gate":"done","run_id":"…"}   the agent ended (or I no longer wait)
 *
 * The socket closing counts as done: the kernel closes it when the
 * pipeline's processes are gone, however they died, so no slot leaks. The
 * watcher closing it before `go` means "do not start": the run ends as a
 * shutdown before the agent does (aborted_shutdown, back to pending).
 */

/** The descriptor a pipeline's pv-run-codex gets the gate on (3 is the claim record channel, 9 the claim lock). */
export const AGENT_GATE_FD = 4;

/** Set for pv-run-codex alone, to AGENT_GATE_FD: without it there is no gate and the agent starts at once. */
export const AGENT_GATE_ENV = 'PV_AGENT_GATE_FD';

/** The watcher's answer to a wait: the slot is granted. */
export const AGENT_GATE_GO = 'go';

export type AgentGateMessage = { gate: 'wait'; run_id: string } | { gate: 'done'; run_id: string };

export function agentGateLine(message: AgentGateMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/** A line pv-run-codex wrote, or undefined for anything else (ignored, as parsers here ignore what they do not know). */
export function parseAgentGateLine(line: string): AgentGateMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { gate, run_id: runId } = parsed as { gate?: unknown; run_id?: unknown };
  if ((gate !== 'wait' && gate !== 'done') || typeof runId !== 'string') return undefined;
  return { gate, run_id: runId };
}
