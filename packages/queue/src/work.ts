import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { JsMsg } from 'nats';
import {
  checkClaimRel,
  checkOwnerName,
  checkRepoName,
  claimRecordPath,
  EX,
  formatRecord,
  isErrno,
  readRecords,
  readRunStatusOrNone,
  runFile,
  runRootFor,
  StepError,
  updateRunStatus,
  type Logger,
  type PvRecord,
  type RecordError,
  type ValetConfig,
} from '@prompt-valet/core';
import {
  encodeMessage,
  MAX_ARTIFACT_CHARS,
  parseJob,
  resultMessageId,
  type JobMessage,
  type ResultArtifacts,
  type ResultMessage,
  deliveriesText,
} from './envelopes.js';
import { followFile, publishLogLine } from './live-log.js';
import { isTransient, retryJetStream, subjectFor, type QueueConnection } from './queue-connection.js';

export interface WorkOptions {
  config: ValetConfig;
  q: QueueConnection;
  /** results subject stem (`results`) */
  resultsStem: string;
  /** log subject stem (`logs`): the command's stderr lines go to `logs.<run id>` */
  logsStem: string;
  /** the command run for each job, with the record on stdin */
  command: string[];
  worker: string;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** true once the worker is stopping: running commands are stopped, their jobs handed back */
  stopping(): boolean;
  /** how many times this worker has been handed each job (one for all its slots) */
  deliveryCounts: DeliveryCounts;
}

/**
 * How many times a job has been delivered, as far as this worker can tell.
 * The server's count (in the message's reply subject) can go back to 1:
 * nats-server before 2.10.14 (Debian 12 ships 2.9.10) loses it when a
 * redelivery meets a pull request that has just expired (nats-server#5305,
 * #5338), and workers pull with a 1 s expiry. Trusting it alone, a worker
 * hands a job back on what is really its last delivery, and the prompt
 * settles through the server's max-deliveries advisory without the command's
 * own failure. So the count acted on is the larger of the server's and this
 * worker's own tally, which can only be lower than the truth (the job may
 * have gone to other workers too), never higher: nothing needs forgetting
 * when a job is answered, and only the most recent `limit` jobs are kept.
 */
export class DeliveryCounts {
  private readonly seen = new Map<number, number>();

  constructor(private readonly limit = 4096) {}

  /** Count one more delivery of job `seq`, whose message says `serverCount`. */
  next(seq: number, serverCount: number): number {
    const count = Math.max(serverCount, (this.seen.get(seq) ?? 0) + 1);
    // Re-inserted so the oldest job is the first key, the one dropped past the limit.
    this.seen.delete(seq);
    this.seen.set(seq, count);
    if (this.seen.size > this.limit) this.seen.delete(this.seen.keys().next().value as number);
    return count;
  }
}

/** Delay before a job handed back (nak) is delivered again. */
const RETRY_DELAY_MS = 1000;

interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  records: PvRecord[];
  /** the lease could not be renewed: the command was stopped, the job is another worker's now */
  leaseLost: boolean;
}

/**
 * One job: prepare this host's run folder, run the command with the record
 * on stdin while renewing the lease (in-progress acks at a third of the ack
 * wait), then publish its output as the result and ack. A command that
 * fails in a retryable way (exit 75, or killed) is handed back (nak with a
 * delay) until the last delivery; a permanent failure becomes an error
 * result and the job is terminated.
 */
export async function runJob(m: JsMsg, opts: WorkOptions): Promise<void> {
  const { config, log } = opts;
  const deliveries = opts.deliveryCounts.next(m.seq, m.info.redeliveryCount);
  const parsed = parseJob(m.data, config.limits.max_prompt_bytes);
  if (!parsed.ok) {
    // Nothing to answer to: the job names no run we could settle.
    log.error(`job #${m.seq} dropped: ${parsed.reason}`);
    m.term(`bad job: ${parsed.reason}`);
    return;
  }
  const job = parsed.value;
  const respond = (record: PvRecord) => publishResult(job, m.seq, deliveries, record, opts);
  let input: PvRecord;
  try {
    input = await prepareRun(job, opts);
  } catch (err) {
    if (!(err instanceof StepError)) throw err;
    await respond({ ...job.record, error: { step: 'queue', code: err.code, message: err.message, retryable: false } });
    m.term(err.code);
    return;
  }
  log.info(`${job.run_id}: started (delivery ${deliveries} of at most ${config.nats.max_deliveries})`);
  const out = await runCommand(input, m, opts, job.run_id, deliveries);
  if (out.leaseLost) {
    log.warn(`${job.run_id}: lease lost (no contact with NATS for the ack wait); stopped the run, the job goes to another worker`);
    return;
  }
  const result = out.records.filter((r) => r.run_id === job.run_id).at(-1);
  if (out.code === 0 && result) {
    if (result.error?.code === 'aborted_shutdown') {
      // Stopped by our own shutdown: another worker continues the run.
      m.nak();
      return;
    }
    await respond(result);
    // Unconfirmed: the job comes again after the ack wait; its run is resumed, its result deduplicated or dropped as settled.
    const acked = await m.ackAck().catch((err: unknown) => {
      if (!isTransient(err)) throw err;
      return false;
    });
    if (!acked) log.warn(`${job.run_id}: the ack was not confirmed; the job may be delivered again`);
    log.info(`${job.run_id}: ${result.error ? `failed: ${result.error.code}` : (result.publish?.outcome ?? 'done')}`);
    return;
  }
  const how = out.signal ? `was killed by ${out.signal}` : `exited ${out.code}${result ? '' : ' without a record'}`;
  const retryable = !opts.stopping() && (out.code === EX.TEMPFAIL || out.signal !== null);
  if (opts.stopping()) {
    m.nak();
    return;
  }
  if (retryable && deliveries < config.nats.max_deliveries) {
    log.warn(`${job.run_id}: the command ${how}; handed back for another try`);
    m.nak(RETRY_DELAY_MS);
    return;
  }
  const error: RecordError = retryable
    ? { step: 'queue', code: 'max_deliveries', message: `gave up after ${deliveriesText(deliveries)} (nats.max_deliveries ${config.nats.max_deliveries}): the worker command ${how}`, retryable: false }
    : { step: 'queue', code: 'worker_failed', message: `the worker command ${how} on ${opts.worker}`, retryable: false };
  log.error(`${job.run_id}: ${error.message}`);
  await respond({ ...job.record, error });
  m.term(error.code);
}

/**
 * This host's run folder for the job, and the record with this host's paths.
 * The paths a record carries are output for people: the worker's own steps
 * derive theirs from this host's configuration and check the record against
 * them (core run-paths), so the valet's copies are replaced here.
 */
async function prepareRun(job: JobMessage, opts: WorkOptions): Promise<PvRecord> {
  const { config } = opts;
  const rec = job.record;
  const rel = checkClaimRel(rec.claim?.rel);
  const runRoot = runRootFor(config, job.run_id);
  await fsp.mkdir(runRoot, { recursive: true });
  const promptFile = runFile(runRoot, 'prompt');
  try {
    // Never overwritten: a redelivery to this host finds the prompt it ran.
    await fsp.writeFile(promptFile, job.prompt, { flag: 'wx' });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
  const t = rec.target;
  if (!t || typeof t.owner !== 'string' || typeof t.repo !== 'string') throw new StepError('missing_target', 'the job has no target (pv-resolve runs before pv-queue send)');
  for (const check of [checkOwnerName(t.owner), checkRepoName(t.repo)]) {
    if (!check.ok) throw new StepError('bad_target', `target: ${check.reason}`);
  }
  const claim = rec.claim!;
  await updateRunStatus(runRoot, {
    state: 'claimed',
    prompt_rel: claim.prompt_rel,
    attempt: job.attempt,
    worker: opts.worker,
    ...(t.agent_branch ? { agent_branch: t.agent_branch, owner: t.owner, repo: t.repo, branch: t.branch } : {}),
  });
  return {
    v: rec.v,
    run_id: job.run_id,
    claim: {
      ...claim,
      inbox: config.inbox,
      path: path.join(config.inbox, rel),
      run_root: runRoot,
      ledger: claimRecordPath(config, job.run_id),
    },
    target: { ...t, repo_dir: path.join(config.repos_root, t.owner, t.repo) },
  };
}

function runCommand(input: PvRecord, m: JsMsg, opts: WorkOptions, runId: string, deliveries: number): Promise<CommandOutcome> {
  const { q, config, command } = opts;
  const ackWaitMs = config.nats.ack_wait_seconds * 1000;
  const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, detached: true });
  const stopGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch (err) {
      if (!isErrno(err, 'ESRCH')) throw err;
    }
  };
  let leaseLost = false;
  let stoppedForShutdown = false;
  const renew = setInterval(() => {
    if (opts.stopping() && !stoppedForShutdown) {
      stoppedForShutdown = true;
      stopGroup('SIGTERM');
    }
    // A worker that cannot renew its lease stops its agent: the job is
    // about to be delivered to another worker, and two agents must not race.
    if (q.nc.isClosed() || disconnectedFor(opts) > ackWaitMs * 0.8) {
      if (!leaseLost) {
        leaseLost = true;
        stopGroup('SIGTERM');
        setTimeout(() => stopGroup('SIGKILL'), 5000).unref();
      }
      return;
    }
    m.working();
  }, Math.max(200, ackWaitMs / 3));
  child.stdin.on('error', () => undefined);
  child.stdin.end(formatRecord(input));
  const lines = readline.createInterface({ input: child.stderr });
  const publishLine = (line: string) => publishLogLine(q.nc, opts.logsStem, runId, opts.worker, line);
  // First, so the valet knows at once where the run is (pv-status, pv-web), before the clone says anything.
  publishLine(`pv-queue work: ${opts.worker} took job #${m.seq} (delivery ${deliveries})`);
  lines.on('line', (line) => {
    process.stderr.write(`${line}\n`);
    publishLine(line);
  });
  // The agent's own output goes to the run folder's log, not to stderr: followed there.
  const agentLog = followFile(runFile(runRootFor(config, runId), 'log'), publishLine);
  const collected = (async () => {
    const out: PvRecord[] = [];
    for await (const r of readRecords(child.stdout)) out.push(r);
    return out;
  })();
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearInterval(renew);
      void agentLog.stop();
      reject(new StepError('command_failed', `cannot start ${command[0]}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearInterval(renew);
      Promise.all([collected, agentLog.stop()]).then(([records]) => resolve({ code, signal, records, leaseLost }), reject);
    });
  });
}

const disconnectedSince = new WeakMap<WorkOptions, number>();

/** Milliseconds this worker has been without a server (0 when connected). */
function disconnectedFor(opts: WorkOptions): number {
  const since = disconnectedSince.get(opts);
  return since === undefined ? 0 : Date.now() - since;
}

/** Follow the connection's state, for the lease check above. */
export async function trackConnection(opts: WorkOptions): Promise<void> {
  for await (const s of opts.q.nc.status()) {
    if (s.type === 'disconnect') {
      if (!disconnectedSince.has(opts)) disconnectedSince.set(opts, Date.now());
    } else if (s.type === 'reconnect') {
      disconnectedSince.delete(opts);
    }
  }
}

async function publishResult(job: JobMessage, jobSeq: number, deliveries: number, record: PvRecord, opts: WorkOptions): Promise<void> {
  const result: ResultMessage = {
    v: 1,
    kind: 'pv-result',
    run_id: job.run_id,
    attempt: job.attempt,
    resumed: job.resumed,
    job_seq: jobSeq,
    worker: opts.worker,
    deliveries,
    record,
    artifacts: await artifactsOf(runRootFor(opts.config, job.run_id)),
  };
  // The same message id on every try: the stream keeps one copy.
  await retryJetStream(`${job.run_id}: publishing the result`, () =>
    opts.q.js.publish(subjectFor(opts.resultsStem, job.run_id), encodeMessage(result), {
      msgID: resultMessageId(job.run_id, job.attempt, job.resumed),
    }), opts.log);
}

/** The run's small artifacts, to travel back with the result. */
async function artifactsOf(runRoot: string): Promise<ResultArtifacts> {
  const out: ResultArtifacts = {};
  try {
    const text = await fsp.readFile(runFile(runRoot, 'lastMessage'), 'utf8');
    out.last_message = text.slice(0, MAX_ARTIFACT_CHARS);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const status = await readRunStatusOrNone(runRoot);
  if (status?.usage) out.usage = status.usage;
  return out;
}
