import * as readline from 'node:readline';

/**
 * The record stream: one compact JSON object per line on stdout, read back
 * line by line on stdin. Every record carries `v` (the schema version). Each
 * tool adds the section it owns and passes every other field through
 * untouched, so fields this version does not know survive a pipeline.
 */
export const SCHEMA_VERSION = 1;

/** Why a record failed a step. A later step passes it through untouched. */
export interface RecordError {
  /** the tool that failed it, without "pv-": claim, resolve, clone, run-codex, publish, settle, input */
  step: string;
  /** a stable snake_case code, e.g. `base_branch_missing` */
  code: string;
  /** one line a person can act on */
  message: string;
  /** true when the same prompt may succeed later unchanged (network, rate limit) */
  retryable: boolean;
  /** optional detail, e.g. git's own stderr with credentials redacted */
  detail?: string;
  /** the earlier error this one happened while handling (pv-settle failing on a failed record) */
  cause?: RecordError;
}

/** The prompt as pv-claim left it. Owned by pv-claim. */
export interface ClaimSection {
  /** the inbox root (absolute) */
  inbox: string;
  /** path of the claimed file relative to the inbox, e.g. `repo/main/x.running.md` */
  rel: string;
  /** absolute path of the claimed file (`…/x.running.md`) */
  path: string;
  /** the prompt's own name, e.g. `x.prompt.md` */
  prompt_name: string;
  /** the run folder under `processed/` (PV_RUN_ROOT) */
  run_root: string;
  /** 1 for the first try; kept across retries */
  attempt: number;
  claimed_at: string;
  [k: string]: unknown;
}

/** Where the prompt goes. Owned by pv-resolve. */
export interface TargetSection {
  owner: string;
  repo: string;
  /** the base branch: the inbox branch folder, decoded */
  branch: string;
  /** `repos_root/<owner>/<repo>` */
  repo_dir: string;
  clone_url: string;
  /** `codex/<slug>-<run id>` */
  agent_branch: string;
  /** the prompt's optional YAML front matter */
  front_matter: FrontMatter;
  [k: string]: unknown;
}

export interface FrontMatter {
  title?: string;
  draft?: boolean;
  labels?: string[];
  model?: string;
  sandbox?: string;
  /** seconds */
  timeout?: number;
  [k: string]: unknown;
}

/** The run's own isolated checkout. Owned by pv-clone. */
export interface CheckoutSection {
  /** absolute path of the run's worktree */
  dir: string;
  /** commit of origin/<base> the agent branch starts from */
  base_sha: string;
  [k: string]: unknown;
}

/** What the agent did. Owned by pv-run-codex. */
export interface AgentSection {
  exit_code: number | null;
  duration_ms: number;
  timed_out: boolean;
  aborted: boolean;
  /** last message file inside the run folder */
  last_message?: string;
  log?: string;
  [k: string]: unknown;
}

/** What was published. Owned by pv-publish. */
export interface PublishSection {
  outcome: 'pr_opened' | 'pr_exists' | 'pushed' | 'no_changes';
  commit?: string;
  pr_url?: string;
  [k: string]: unknown;
}

/** The prompt's fate. Owned by pv-settle. */
export interface SettleSection {
  state: 'done' | 'error' | 'pending';
  /** where the prompt file is now */
  path: string;
  [k: string]: unknown;
}

export interface PvRecord {
  v: number;
  run_id?: string;
  claim?: ClaimSection;
  target?: TargetSection;
  checkout?: CheckoutSection;
  agent?: AgentSection;
  publish?: PublishSection;
  settle?: SettleSection;
  error?: RecordError;
  [k: string]: unknown;
}

/** Longest input line kept verbatim in a malformed-line error record. */
const MAX_ECHO = 200;

/**
 * Read records from a stream of JSON lines. A line that is not a JSON object
 * becomes an error record (step `input`) and the stream goes on. Blank lines
 * are skipped. Lines of any length are read whole.
 */
export async function* readRecords(input: NodeJS.ReadableStream): AsyncGenerator<PvRecord> {
  const rl = readline.createInterface({ input, crlfDelay: Infinity, terminal: false });
  let lineNo = 0;
  for await (const line of rl) {
    lineNo++;
    if (line.trim() === '') continue;
    yield parseRecordLine(line, lineNo);
  }
}

export function parseRecordLine(line: string, lineNo = 1): PvRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return malformed(line, lineNo, `line ${lineNo} is not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return malformed(line, lineNo, `line ${lineNo} is JSON but not an object`);
  }
  const rec = value as PvRecord;
  if (rec.v === undefined) rec.v = SCHEMA_VERSION;
  return rec;
}

function malformed(line: string, lineNo: number, message: string): PvRecord {
  return {
    v: SCHEMA_VERSION,
    input: { line: lineNo, text: line.length > MAX_ECHO ? `${line.slice(0, MAX_ECHO)}…` : line },
    error: { step: 'input', code: 'malformed_record', message, retryable: false },
  };
}

/** One compact object per line; the schema version is always set. */
export function formatRecord(rec: PvRecord): string {
  return JSON.stringify({ ...rec, v: rec.v ?? SCHEMA_VERSION }) + '\n';
}

/**
 * Write a record and wait for the stream to take it, so a slow reader
 * applies back-pressure instead of filling memory.
 */
export async function writeRecord(out: NodeJS.WritableStream, rec: PvRecord): Promise<void> {
  const ok = out.write(formatRecord(rec));
  if (!ok) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/** A copy of `rec` that failed `step`. */
export function withError(rec: PvRecord, error: RecordError): PvRecord {
  return { ...rec, error };
}

export function recordError(step: string, code: string, message: string, retryable: boolean, detail?: string): RecordError {
  return detail === undefined ? { step, code, message, retryable } : { step, code, message, retryable, detail };
}

/**
 * An error a step handler throws to fail one record (not the tool). Anything
 * else thrown by a handler is a bug: the record gets code `internal`.
 */
export class StepError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly detail?: string;
  constructor(code: string, message: string, opts: { retryable?: boolean; detail?: string } = {}) {
    super(message);
    this.name = 'StepError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    if (opts.detail !== undefined) this.detail = opts.detail;
  }
}
