import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { expectSyntaxError, readJsonIfExists, writeJsonAtomic } from './files.js';
import { SCHEMA_VERSION, type RecordError } from './records.js';

/**
 * A run folder, `processed/<run id>/` (PV_RUN_ROOT). Every step writes its
 * files here under these names, and updates `status.json` as the run moves.
 */
export const RUN_FILES = {
  /** a copy of the prompt as claimed */
  prompt: 'prompt.md',
  /** the status record (RunStatus), rewritten atomically by each step */
  status: 'status.json',
  /** the agent's stdout and stderr, written while it runs */
  log: 'agent.log',
  /** the agent's JSON event stream (codex exec --json) */
  events: 'events.jsonl',
  /** the agent's last message */
  lastMessage: 'last-message.md',
  /** the pull request title and body as published (or as they would be) */
  prBody: 'pr-body.md',
  /** what pv-publish did */
  publish: 'publish.json',
  /** why the run failed, for people */
  error: 'error.md',
  /** the operator (or pv-web) creates this to stop a running agent */
  abort: 'ABORT',
  /** dispatch: nats — the worker host running the job, as its live log names it (pv-queue recv) */
  worker: 'worker.txt',
} as const;

export type RunState =
  | 'claimed'
  | 'resolved'
  | 'cloned'
  | 'running'
  | 'published'
  | 'done'
  | 'error'
  | 'retry';

export interface RunHistoryEntry {
  state: RunState;
  at: string;
  step?: string;
  reason?: string;
}

export interface RunStatus {
  v: number;
  run_id: string;
  state: RunState;
  /** the prompt's path relative to the inbox when claimed (`repo/main/x.prompt.md`) */
  prompt_rel: string;
  attempt: number;
  created_at: string;
  updated_at: string;
  history: RunHistoryEntry[];
  owner?: string;
  repo?: string;
  branch?: string;
  agent_branch?: string;
  /** how many times the agent was started for this run (pv-run-codex, just before each start) */
  agent_runs?: number;
  outcome?: string;
  pr_url?: string;
  /** where the settled prompt went (`finished/…/x.done.md`) */
  final_path?: string;
  error?: RecordError;
  usage?: Record<string, number>;
  /** dispatch: nats — the worker host that ran the job, and how often it was delivered (pv-queue recv) */
  worker?: string;
  deliveries?: number;
  /** milliseconds spent per step */
  durations_ms?: Record<string, number>;
  /** fields a step adds for its own use (e.g. `agent`, `publish`) */
  [step: string]: unknown;
}

export function runFile(runRoot: string, name: keyof typeof RUN_FILES): string {
  return path.join(runRoot, RUN_FILES[name]);
}

export async function readRunStatus(runRoot: string): Promise<RunStatus | undefined> {
  return readJsonIfExists<RunStatus>(runFile(runRoot, 'status'));
}

/**
 * A run's status for a decision (resume it? settled already?): undefined
 * when the run folder has none or it is torn (edited by hand; the valet only
 * renames whole files into place). A status that cannot be read for any
 * other reason (permissions) is an error, never "no run": that would start
 * the work again.
 */
export async function readRunStatusOrNone(runRoot: string): Promise<RunStatus | undefined> {
  try {
    return await readRunStatus(runRoot);
  } catch (err) {
    expectSyntaxError(err);
    return undefined;
  }
}

type KnownStatusFields = Pick<RunStatus, 'state' | 'prompt_rel' | 'attempt' | 'created_at' | 'owner' | 'repo' | 'branch'
  | 'agent_branch' | 'agent_runs' | 'outcome' | 'pr_url' | 'final_path' | 'error' | 'usage' | 'durations_ms'>;

export interface StatusUpdate extends Partial<KnownStatusFields> {
  [step: string]: unknown;
  /** with a `state` change: why, for the history */
  reason?: string;
  step?: string;
}

/**
 * Merge `update` into the run's status record (shallow; `durations_ms` and
 * `usage` merge by key) and append to the history when the state changes.
 * Only the one pipeline holding the claim writes a run's status, so a
 * read-modify-write is safe; the write itself is atomic.
 */
export async function updateRunStatus(runRoot: string, update: StatusUpdate, now = new Date()): Promise<RunStatus> {
  const at = now.toISOString();
  const prev = await readRunStatus(runRoot);
  const { reason, step, ...fields } = update;
  const base: RunStatus = prev ?? {
    v: SCHEMA_VERSION,
    run_id: path.basename(runRoot),
    state: 'claimed',
    prompt_rel: '',
    attempt: 1,
    created_at: at,
    updated_at: at,
    history: [],
  };
  const next: RunStatus = {
    ...base,
    ...fields,
    durations_ms: { ...base.durations_ms, ...fields.durations_ms },
    updated_at: at,
    history: [...base.history],
  };
  if (!fields.usage && base.usage) next.usage = base.usage;
  if (Object.keys(next.durations_ms ?? {}).length === 0) delete next.durations_ms;
  if (fields.state && (fields.state !== base.state || !prev)) {
    const entry: RunHistoryEntry = { state: fields.state, at };
    if (step) entry.step = step;
    if (reason) entry.reason = reason;
    next.history.push(entry);
  }
  await fsp.mkdir(runRoot, { recursive: true });
  await writeJsonAtomic(runFile(runRoot, 'status'), next);
  return next;
}
