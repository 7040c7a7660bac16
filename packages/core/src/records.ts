/**
 * The record stream: one compact JSON object per line on stdout, read back
 * line by line on stdin. Every record carries `v` (the schema version). Each
 * tool adds the section it owns and passes every other field through
 * untouched, so fields this version does not know survive a pipeline.
 */
import type { Liveness } from './prompt-ledger.js';
import type { FollowUpTarget } from './follow-up.js';
import { PvError, type PvErrorOptions } from './errors.js';

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
  /** the agent was stopped before it finished: why, and where its work went (pv-run-codex, pv-publish) */
  incomplete?: IncompleteWork;
}

/** Why a run was stopped with its work unfinished; such work is kept (watcher.keep_incomplete_work). */
export const INCOMPLETE_REASONS = ['timeout', 'idle_timeout', 'aborted', 'budget_exceeded'] as const;
export type IncompleteReason = (typeof INCOMPLETE_REASONS)[number];

/** The label of the draft PR that holds a stopped run's work. */
export const INCOMPLETE_LABEL = 'prompt-valet:incomplete';

export interface IncompleteWork {
  reason: IncompleteReason;
  /** the agent branch the work was pushed to (pv-publish) */
  branch?: string;
  commit?: string;
  /** the draft PR labelled prompt-valet:incomplete */
  pr_url?: string;
  /** why no draft PR holds the work: keep_incomplete_work is false, the agent changed nothing, or what keeping it failed on */
  not_kept?: string;
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
  /** the prompt's name relative to the inbox, e.g. `repo/main/x.prompt.md` */
  prompt_rel: string;
  /** 1 for the first try; kept across retries */
  attempt: number;
  claimed_at: string;
  /** what keeps the claim alive: the claim lock pv-claim ran under */
  liveness?: Liveness;
  /** the running file's inode, so a later step knows it is the same file */
  ino?: number;
  /** the claim's entry in the ledger (processed/.claims/<run id>.json) */
  ledger?: string;
  /** how many times this run was continued after a crash or a retry */
  resumed?: number;
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
  /** folders between the branch folder and the prompt, e.g. `["docs"]` */
  subdirs: string[];
  /** a follow-up: the earlier run whose agent branch and PR this run continues */
  follow_up?: FollowUpTarget;
}

export interface FrontMatter {
  title?: string;
  draft?: boolean;
  labels?: string[];
  model?: string;
  sandbox?: string;
  /** seconds */
  timeout?: number;
  /** the run's token cap (at most watcher.runner_max_tokens when that is set) */
  max_tokens?: number;
  /** continue earlier work: a run id or the URL of a PR this valet opened */
  follow_up?: string;
  [k: string]: unknown;
}

/** The run's own isolated checkout. Owned by pv-clone. */
export interface CheckoutSection {
  /** absolute path of the run's worktree */
  dir: string;
  /** commit of origin/<base> the agent branch starts from */
  base_sha: string;
  /** the agent branch checked out there */
  branch: string;
  /** what was done to the shared clone first */
  repo: 'cloned' | 'existing' | 'replaced';
  /** true when the agent branch already existed (a resumed run) */
  reused_branch: boolean;
  /** where a folder in the clone's place was moved */
  moved_to?: string;
  /** a stash made of local changes found in the clone */
  stashed?: string;
  /** stale worktree folders moved out of the run's way */
  moved_aside?: string[];
  /** on resume after the agent finished: whether the checkout was still there */
  reused_checkout?: boolean;
}

/** What the agent did. Owned by pv-run-codex. */
export interface AgentSection {
  exit_code: number | null;
  duration_ms: number;
  timed_out: boolean;
  aborted: boolean;
  idle_timed_out: boolean;
  /** `abort_file` (ABORT in the run folder) or `shutdown` (pv-run-codex was stopped) */
  abort_reason?: 'abort_file' | 'shutdown';
  signal?: string;
  model: string;
  sandbox: string;
  /** the agent's JSON event stream, with --json */
  events?: string;
  /** last message file inside the run folder */
  last_message?: string;
  /** the last message's copy inside the checkout, relative to it */
  agent_runs_file?: string;
  log?: string;
  /** token counts by kind, summed over the run's turns */
  usage?: TokenUsage;
  /** the run's token cap (front matter max_tokens, else watcher.runner_max_tokens); absent: none */
  max_tokens?: number;
  /** tokens used past max_tokens: the agent is stopped at the first model response past it */
  tokens_over_budget?: number;
  /** processes the agent left running, stopped after it exited */
  leftovers_stopped?: number;
  /** the jail and the limits this run had (docs/security.md) */
  limits?: AppliedLimits;
  /** limits that stopped something: processes, memory, file_size */
  limits_tripped?: string[];
  /** codex's session (thread) id: a follow-up resumes it (`codex exec resume`) */
  session_id?: string;
  /** a follow-up: `resumed` (the earlier session went on) or `fresh` (not known: the earlier summary was quoted) */
  continued?: 'resumed' | 'fresh';
}

/** Token counts by kind (input_tokens, output_tokens, …) as codex reports them. */
export type TokenUsage = Record<string, number>;

/** What a run's status records about its confinement. */
export interface AppliedLimits {
  isolation: 'bwrap' | 'none';
  cgroup: 'v2' | 'v1' | 'none';
  pids_max?: number;
  memory_max?: number;
  rlimit_nproc?: number;
  rlimit_fsize: number;
}

/** What was published. Owned by pv-publish. */
export interface PublishSection {
  outcome: 'pr_opened' | 'pr_exists' | 'pr_commented' | 'pushed' | 'no_changes';
  /** the agent branch pushed */
  branch: string;
  /** carries the trailer `Prompt-Valet-Run: <run id>` */
  commit?: string;
  /** the pull request's title */
  title?: string;
  pr_url?: string;
  /** the work of a run stopped before it finished: a draft PR labelled prompt-valet:incomplete */
  incomplete?: true;
  /** a follow-up's comment on the existing PR (outcome `pr_commented`) */
  comment_url?: string;
}

/** The prompt's fate. Owned by pv-settle. */
export interface SettleSection {
  state: 'done' | 'error' | 'pending';
  /** where the prompt file is now */
  path: string;
  /** for done: what pv-publish did */
  outcome?: PublishSection['outcome'];
  /** for pending: tries so far */
  attempts?: number;
  /** for pending: not claimed again before this time (ISO 8601) */
  not_before?: string;
  /** for error: the reason file written beside the prompt */
  reason_path?: string;
  settled_at?: string;
  /** settled by pv-claim --recover, after a crash between settle's two moves */
  recovered?: true;
  /** the run was settled earlier; this record repeats that */
  already?: true;
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

/** limits.max_record_bytes when no configuration says otherwise. */
export const DEFAULT_MAX_RECORD_BYTES = 1048576;

export interface ReadRecordsOptions {
  /** longest line read (bytes, without the newline); default DEFAULT_MAX_RECORD_BYTES */
  maxLineBytes?: number;
}

/**
 * Read records from a stream of JSON lines. A line that is not a JSON object
 * becomes an error record (step `input`) and the stream goes on. Blank lines
 * are skipped. A line longer than `maxLineBytes` is never held in memory:
 * its bytes past the cap are counted and dropped as they arrive, and it
 * becomes one `record_too_large` error record; the next line is read as usual.
 */
export async function* readRecords(input: NodeJS.ReadableStream, opts: ReadRecordsOptions = {}): AsyncGenerator<PvRecord> {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_RECORD_BYTES;
  let pieces: Buffer[] = [];
  let lineBytes = 0;
  let lineNo = 0;
  const endLine = (): PvRecord | undefined => {
    lineNo++;
    const bytes = lineBytes;
    const text = bytes > max ? '' : Buffer.concat(pieces).toString('utf8').replace(/\r$/, '');
    pieces = [];
    lineBytes = 0;
    if (bytes > max) return tooLarge(lineNo, bytes, max);
    return text.trim() === '' ? undefined : parseRecordLine(text, lineNo);
  };
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      const end = nl < 0 ? buf.length : nl;
      lineBytes += end - start;
      // Past the cap the line is only counted: what was kept of it goes too.
      if (lineBytes <= max) {
        if (end > start) pieces.push(buf.subarray(start, end));
      } else if (pieces.length > 0) {
        pieces = [];
      }
      if (nl < 0) break;
      const rec = endLine();
      if (rec) yield rec;
      start = nl + 1;
    }
  }
  if (lineBytes > 0) {
    const rec = endLine();
    if (rec) yield rec;
  }
}

function tooLarge(lineNo: number, bytes: number, max: number): PvRecord {
  return {
    v: SCHEMA_VERSION,
    input: { line: lineNo, bytes },
    error: {
      step: 'input',
      code: 'record_too_large',
      message: `line ${lineNo} is ${bytes} bytes, more than limits.max_record_bytes (${max}); skipped unread`,
      retryable: false,
    },
  };
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
export class StepError extends PvError {
  constructor(code: string, message: string, opts: PvErrorOptions = {}) {
    super(code, message, opts);
  }
}
