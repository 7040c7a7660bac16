import {
  isRunId,
  SCHEMA_VERSION,
  type AgentSection,
  type PublishSection,
  type PvRecord,
  type RecordError,
} from '@prompt-valet/core';

/**
 * What travels over the queue (docs/scale-out.md). A job is the record as
 * pv-resolve left it on the valet host plus the prompt's text (the worker has
 * none of the valet's files); a result is what the worker's pipeline
 * emitted plus the run's small artifacts. Both are input from another host:
 * parsed and checked here before anything acts on them.
 */
export interface JobMessage {
  v: number;
  kind: 'pv-job';
  run_id: string;
  attempt: number;
  /** claim.resumed: with the attempt, what makes a real re-dispatch a new message */
  resumed: number;
  record: PvRecord;
  /** the prompt as claimed (the valet's run folder copy) */
  prompt: string;
}

export interface ResultArtifacts {
  /** the agent's last message (bounded) */
  last_message?: string;
  /** token counts from the worker's status.json */
  usage?: Record<string, number>;
}

export interface ResultMessage {
  v: number;
  kind: 'pv-result';
  run_id: string;
  attempt: number;
  resumed: number;
  /** the job's sequence in the jobs stream: the valet's claim names it */
  job_seq: number;
  /** the worker that ran it (pv-queue work --name) */
  worker: string;
  /** how many times the job had been delivered when this result was made */
  deliveries: number;
  record: PvRecord;
  artifacts: ResultArtifacts;
}

/** Message ids: a resend of one dispatch is dropped by the stream; a new try (attempt, resume) is a new message. */
export const jobMessageId = (runId: string, attempt: number, resumed: number): string => `job.${runId}.${attempt}.${resumed}`;
export const resultMessageId = (runId: string, attempt: number, resumed: number): string => `result.${runId}.${attempt}.${resumed}`;

/** Longest last message carried back; the whole one stays in the worker's run folder. */
export const MAX_ARTIFACT_CHARS = 64 * 1024;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
const isLine = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max && !/[\r\n\0]/.test(v);

function parseJson(data: Uint8Array): Parsed<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message})` };
  }
  return isObject(value) ? { ok: true, value } : { ok: false, reason: 'not a JSON object' };
}

function commonFields(m: Record<string, unknown>, kind: string): string | undefined {
  if (m.kind !== kind) return `kind is ${JSON.stringify(m.kind)}, expected ${kind}`;
  if (typeof m.run_id !== 'string' || !isRunId(m.run_id)) return `run_id ${JSON.stringify(m.run_id)} is not a run id`;
  if (!isCount(m.attempt, 1)) return 'attempt is not a whole number >= 1';
  if (!isCount(m.resumed, 0)) return 'resumed is not a whole number >= 0';
  if (!isObject(m.record)) return 'record is not an object';
  if (m.record.run_id !== m.run_id) return 'record.run_id differs from run_id';
  return undefined;
}

export function parseJob(data: Uint8Array, maxPromptBytes: number): Parsed<JobMessage> {
  const p = parseJson(data);
  if (!p.ok) return p;
  const m = p.value;
  const problem = commonFields(m, 'pv-job');
  if (problem) return { ok: false, reason: problem };
  if (typeof m.prompt !== 'string') return { ok: false, reason: 'prompt is not a string' };
  if (Buffer.byteLength(m.prompt) > maxPromptBytes) return { ok: false, reason: `prompt is larger than limits.max_prompt_bytes (${maxPromptBytes})` };
  return { ok: true, value: m as unknown as JobMessage };
}

export function parseResult(data: Uint8Array): Parsed<ResultMessage> {
  const p = parseJson(data);
  if (!p.ok) return p;
  const m = p.value;
  const problem = commonFields(m, 'pv-result');
  if (problem) return { ok: false, reason: problem };
  if (!isCount(m.job_seq, 1)) return { ok: false, reason: 'job_seq is not a stream sequence' };
  if (!isLine(m.worker, 200) || m.worker === '') return { ok: false, reason: 'worker is not a name' };
  if (!isCount(m.deliveries, 1)) return { ok: false, reason: 'deliveries is not a whole number >= 1' };
  if (!isObject(m.artifacts)) return { ok: false, reason: 'artifacts is not an object' };
  return { ok: true, value: m as unknown as ResultMessage };
}

export function encodeMessage(m: JobMessage | ResultMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...m, v: SCHEMA_VERSION }));
}

// ---- what the valet keeps of a worker's record ---------------------------------

const PUBLISH_OUTCOMES: readonly PublishSection['outcome'][] = ['pr_opened', 'pr_exists', 'pushed', 'no_changes'];

function tokenCounts(v: unknown): Record<string, number> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    if (/^[a-z_]{1,64}$/.test(k) && typeof n === 'number' && Number.isFinite(n) && n >= 0) out[k] = n;
  }
  return out;
}

/** An error section as a worker reported it, or undefined when it is not one. */
export function checkedError(v: unknown): RecordError | undefined {
  if (!isObject(v)) return undefined;
  if (!isLine(v.step, 40) || !/^[a-z][a-z0-9_-]*$/.test(v.code as string) || !isLine(v.message, 4000) || typeof v.retryable !== 'boolean') {
    return undefined;
  }
  const out: RecordError = { step: v.step, code: v.code as string, message: v.message, retryable: v.retryable };
  if (typeof v.detail === 'string') out.detail = v.detail.slice(0, 16_000);
  return out;
}

function checkedPublish(v: unknown): PublishSection | undefined {
  if (!isObject(v) || !PUBLISH_OUTCOMES.includes(v.outcome as PublishSection['outcome']) || !isLine(v.branch, 250)) return undefined;
  const out: PublishSection = { outcome: v.outcome as PublishSection['outcome'], branch: v.branch };
  if (typeof v.commit === 'string' && /^[0-9a-f]{40,64}$/.test(v.commit)) out.commit = v.commit;
  if (isLine(v.title, 500)) out.title = v.title;
  if (isLine(v.pr_url, 2000) && /^https?:\/\//.test(v.pr_url)) out.pr_url = v.pr_url;
  return out;
}

function checkedAgent(v: unknown, lastMessage: string | undefined): AgentSection | undefined {
  if (!isObject(v)) return undefined;
  const flag = (x: unknown) => x === true;
  const out: AgentSection = {
    exit_code: typeof v.exit_code === 'number' && Number.isInteger(v.exit_code) ? v.exit_code : null,
    duration_ms: typeof v.duration_ms === 'number' && v.duration_ms >= 0 ? v.duration_ms : 0,
    timed_out: flag(v.timed_out),
    aborted: flag(v.aborted),
    idle_timed_out: flag(v.idle_timed_out),
    model: isLine(v.model, 200) ? v.model : '',
    sandbox: isLine(v.sandbox, 100) ? v.sandbox : '',
  };
  const usage = tokenCounts(v.usage);
  if (usage) out.usage = usage;
  if (lastMessage !== undefined) out.last_message = lastMessage;
  return out;
}

export interface KeptSections {
  agent?: AgentSection;
  publish?: PublishSection;
  error?: RecordError;
}

/**
 * The sections of a worker's record the valet keeps, each checked field by
 * field; paths are the valet's own (`lastMessagePath`, when the artifact came
 * back), never the worker's. A record that failed carries an error even when
 * the worker's error section was not a valid one.
 */
export function keptSections(rec: PvRecord, lastMessagePath: string | undefined): KeptSections {
  const out: KeptSections = {};
  const agent = checkedAgent(rec.agent, lastMessagePath);
  if (agent) out.agent = agent;
  const publish = checkedPublish(rec.publish);
  if (publish) out.publish = publish;
  if (rec.error !== undefined) {
    out.error = checkedError(rec.error) ?? {
      step: 'queue',
      code: 'bad_result',
      message: 'the worker reported an error the valet could not read',
      retryable: false,
    };
  }
  return out;
}

export function checkedArtifacts(a: ResultArtifacts): ResultArtifacts {
  const out: ResultArtifacts = {};
  if (typeof a.last_message === 'string') out.last_message = a.last_message.slice(0, MAX_ARTIFACT_CHARS);
  const usage = tokenCounts(a.usage);
  if (usage) out.usage = usage;
  return out;
}

/** "1 delivery", "3 deliveries": for messages people read. */
export const deliveriesText = (n: number): string => `${n} ${n === 1 ? 'delivery' : 'deliveries'}`;
