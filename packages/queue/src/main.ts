import * as os from 'node:os';
import type { Consumer } from 'nats';
import {
  envWithConfigHandoff,
  ConfigError,
  defineTool,
  EX,
  EXIT_STATUS_HELP,
  stepErrorToRecord,
  withError,
  readRecords,
  ToolError,
  writeRecord,
  type ToolContext,
  type ToolIO,
  type ToolMain,
  type ValetConfig,
} from '@prompt-valet/core';
import { checkSubjectStem, connectQueue, ensureAdvisoryStream, ensureWorkQueue, retryJetStream, VALET_CONSUMER, WORKERS_CONSUMER, type QueueConnection } from './queue-connection.js';
import { mirrorRemoteLogs } from './live-log.js';
import { ResultReceiver } from './recv.js';
import { dispatchRecord } from './send.js';
import { DeliveryCounts, runJob, trackConnection, type WorkOptions } from './work.js';

interface QueueArgs {
  slots: number;
  name?: string;
  results: string;
  jobs: string;
  logs: string;
}

type Action = 'send' | 'work' | 'recv';
const ACTIONS: readonly Action[] = ['send', 'work', 'recv'];

const SUMMARY = 'Carry runs between the valet host and worker hosts over a NATS JetStream work queue (dispatch: nats).';

const USAGE = `pv-queue send SUBJECT [--config FILE] < records
  pv-queue work SUBJECT [--slots N] [--name NAME] [--results SUBJECT] [--logs SUBJECT] -- CMD [ARG…]
  pv-queue recv SUBJECT [--jobs SUBJECT] [--logs SUBJECT] -- CMD [ARG…]`;

const EPILOGUE = `
send: each record from pv-resolve is published to SUBJECT.<run id> in the
  jobs stream (nats.jobs_stream) with the prompt's text, message id = run id
  + attempt + resume count: a resend is dropped by the stream, a new try is
  a new job. The claim becomes "dispatched" (stream, sequence) in the
  ledger, so local recovery leaves it alone. Records that already failed,
  or could not be queued (queue_unreachable, retryable), are written to
  stdout for pv-settle; dispatched ones are not.
work: takes one job per free slot (--slots, default 1) from the shared
  durable consumer, makes this host's run folder, runs CMD with the record
  on stdin while renewing the lease (in-progress acks at a third of
  nats.ack_wait_seconds), publishes CMD's last record (with the last
  message and token counts) to RESULTS.<run id>, then acks. CMD exiting 75
  or killed: the job is handed back (nak) until nats.max_deliveries, then
  answered with error max_deliveries. Any other failure: an error result
  (worker_failed) and the job is terminated. A worker cut off from NATS
  for most of the ack wait stops CMD: the job goes to another worker.
  CMD's stderr lines and the lines its agent appends to the run folder's
  agent.log are published to LOGS.<run id>.
recv: long-lived on the valet host. Each result is checked like any input
  (run id, the claim's dispatch sequence and attempt, each section field by
  field; paths are the valet's own), handed to CMD (pv-settle) and acked
  only after CMD's output record for it has been read back; CMD's output
  goes to stdout (for pv-notify). A result for a run already settled is
  dropped (settles once). Every nats.reconcile_interval_seconds: jobs the
  server gave up on (max-deliveries advisories, kept in the stream
  <jobs_stream>_MAX_DELIVERIES) settle as error max_deliveries and are
  removed; dispatched claims whose job left the jobs stream without a
  result settle as error dispatch_lost. Live log lines of dispatched runs
  (LOGS.<run id>) are appended to the valet's run folder's agent.log as
  "[worker] line", so pv-web and pv-status follow a remote run (and show
  which worker runs it) as they follow a local one.

Both streams and their consumers are made (or brought in line with the
configuration) by recv when it starts: start it (pv-results.service) before
the first dispatch; workers started earlier wait for the jobs stream.

${EXIT_STATUS_HELP}

Example (valet host, then each worker host):
  pv-claim | pv-resolve | pv-queue send jobs | pv-settle
  pv-queue recv results -- pv-settle | pv-notify
  pv-queue work jobs --slots 2 -- sh -c 'pv-clone | pv-run-codex | pv-publish'`;

function makeTool(action: Action | undefined, subject: string | undefined, command: string[]): ToolMain {
  return defineTool<QueueArgs>({
    name: 'pv-queue',
    summary: SUMMARY,
    usage: USAGE,
    epilogue: EPILOGUE,
    options: (y) =>
      y
        .option('slots', { type: 'number', default: 1, describe: 'work: jobs run at once' })
        .option('name', { type: 'string', describe: 'work: this worker\'s name in results and logs (default: the host name)' })
        .option('results', { type: 'string', default: 'results', describe: 'work: subject stem results are published to' })
        .option('jobs', { type: 'string', default: 'jobs', describe: 'recv: subject stem of the jobs (for reconciling)' })
        .option('logs', { type: 'string', default: 'logs', describe: 'subject stem of live log lines (work publishes, recv appends them to the run\'s agent.log)' }),
    async run(ctx) {
      if (!action || !ACTIONS.includes(action)) {
        throw new ToolError('bad_action', `say what to do: pv-queue send|work|recv SUBJECT (got ${JSON.stringify(action ?? '')})`, EX.USAGE);
      }
      const stem = checkSubjectStem(subject, 'SUBJECT');
      const { config } = ctx.config();
      if (config.dispatch !== 'nats') throw new ConfigError(`dispatch is ${config.dispatch}: pv-queue is for dispatch: nats (docs/scale-out.md)`);
      if (action !== 'send' && command.length === 0) {
        throw new ToolError('no_command', `pv-queue ${action} needs the command after --, e.g. -- ${action === 'work' ? "sh -c 'pv-clone | pv-run-codex | pv-publish'" : 'pv-settle'}`, EX.USAGE);
      }
      const q = await connectQueue(config.nats, `pv-queue-${action}`);
      try {
        if (action === 'send') return await send(ctx, config, q, stem);
        if (action === 'work') return await work(ctx, config, q, stem, command);
        return await recv(ctx, config, q, stem, command);
      } finally {
        await q.close();
      }
    },
  });
}

async function send(ctx: ToolContext<QueueArgs>, config: ValetConfig, q: QueueConnection, stem: string): Promise<number> {
  for await (const rec of readRecords(ctx.io.stdin, { maxLineBytes: config.limits.max_record_bytes })) {
    // Only what did not go out is written: pv-settle after send settles those, recv the rest.
    if (rec.error) {
      await writeRecord(ctx.io.stdout, rec);
      continue;
    }
    try {
      await dispatchRecord(rec, config, q, stem, ctx.log);
    } catch (err) {
      await writeRecord(ctx.io.stdout, withError(rec, stepErrorToRecord('queue', err, ctx.log)));
    }
  }
  return EX.OK;
}

/**
 * The shared consumer of the jobs stream, waiting for it as long as it takes
 * (the valet's receiver makes it; a cluster may still be electing): a
 * worker started first simply waits.
 */
async function jobsConsumer(ctx: ToolContext<QueueArgs>, config: ValetConfig, q: QueueConnection, stopping: () => boolean): Promise<Consumer> {
  let said = '';
  for (;;) {
    try {
      return await q.js.consumers.get(config.nats.jobs_stream, WORKERS_CONSUMER);
    } catch (err) {
      if (stopping()) throw new ToolError('stopped', 'stopped while waiting for the jobs stream', EX.TEMPFAIL);
      const line = `waiting for the jobs stream ${config.nats.jobs_stream} (pv-queue recv on the valet host makes it): ${(err as Error).message}`;
      if (line !== said) ctx.log.warn(line);
      said = line;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Stops a long-lived side on SIGTERM/SIGINT: it finishes what it holds, takes nothing new. */
function stopSignal(): { stopping: () => boolean; stopped: Promise<void>; dispose: () => void } {
  let stopping = false;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = () => {
    stopping = true;
    wake();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    stopping: () => stopping,
    stopped,
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

async function work(ctx: ToolContext<QueueArgs>, config: ValetConfig, q: QueueConnection, stem: string, command: string[]): Promise<number> {
  const slots = ctx.args.slots;
  if (!Number.isInteger(slots) || slots < 1 || slots > 64) throw new ToolError('bad_slots', `--slots ${slots}: expected a whole number from 1 to 64`, EX.USAGE);
  const resultsStem = checkSubjectStem(ctx.args.results, '--results');
  const logsStem = checkSubjectStem(ctx.args.logs, '--logs');
  const worker = ctx.args.name ?? os.hostname();
  const signal = stopSignal();
  const opts: WorkOptions = { config, q, resultsStem, logsStem, command, worker, log: ctx.log, env: envWithConfigHandoff(ctx.io.env, ctx.loaded), stopping: signal.stopping, deliveryCounts: new DeliveryCounts() };
  void trackConnection(opts);
  ctx.log.info(`${worker}: taking jobs from ${config.nats.jobs_stream} (${stem}.*) with ${slots} slot(s)`);
  const consumer = await jobsConsumer(ctx, config, q, signal.stopping);
  const slot = async () => {
    while (!signal.stopping()) {
      const m = await consumer.next({ expires: 1000 }).catch((err: unknown) => {
        ctx.log.warn(`waiting for a job: ${(err as Error).message}`);
        return null;
      });
      if (m) await runJob(m, opts);
    }
  };
  await Promise.all(Array.from({ length: slots }, slot));
  signal.dispose();
  return EX.OK;
}

async function recv(ctx: ToolContext<QueueArgs>, config: ValetConfig, q: QueueConnection, stem: string, command: string[]): Promise<number> {
  const jobsStem = checkSubjectStem(ctx.args.jobs, '--jobs');
  // The valet's receiver is the one manager of both streams (see ensureWorkQueue).
  await retryJetStream('making the jobs stream', () => ensureWorkQueue(q, config.nats, config.nats.jobs_stream, jobsStem, WORKERS_CONSUMER), ctx.log);
  await retryJetStream('making the max-deliveries advisory stream', () => ensureAdvisoryStream(q, config.nats), ctx.log);
  await retryJetStream('making the results stream', () => ensureWorkQueue(q, config.nats, config.nats.results_stream, stem, VALET_CONSUMER), ctx.log);
  const receiver = new ResultReceiver({ config, q, command, jobsStem, resultsStem: stem, log: ctx.log, env: envWithConfigHandoff(ctx.io.env, ctx.loaded), stdout: ctx.io.stdout });
  const logsStem = checkSubjectStem(ctx.args.logs, '--logs');
  const logs = mirrorRemoteLogs(q.nc, logsStem, config, ctx.log);
  const signal = stopSignal();
  const consumer = await retryJetStream('opening the results consumer', () => q.js.consumers.get(config.nats.results_stream, VALET_CONSUMER), ctx.log);
  ctx.log.info(`taking results from ${config.nats.results_stream} (${stem}.*) for ${command[0]}`);
  const every = config.nats.reconcile_interval_seconds * 1000;
  let nextReconcile = 0;
  try {
    while (!signal.stopping()) {
      if (Date.now() >= nextReconcile) {
        await retryJetStream('settling jobs out of deliveries', () => receiver.settleExhaustedJobs(), ctx.log);
        await retryJetStream('reconciling dispatched claims', () => receiver.reconcile(), ctx.log);
        nextReconcile = Date.now() + every;
      }
      const m = await retryJetStream('waiting for a result', () => consumer.next({ expires: Math.min(1000, every) }), ctx.log);
      if (m) await receiver.handle(m);
    }
  } finally {
    signal.dispose();
    logs.unsubscribe();
    await receiver.close();
  }
  return EX.OK;
}

/** pv-queue ACTION SUBJECT [options] [-- CMD…]: the action and subject are words, CMD is everything after --. */
export const main: ToolMain = async (argv, io?: Partial<ToolIO>) => {
  const dashes = argv.indexOf('--');
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  const command = dashes < 0 ? [] : argv.slice(dashes + 1);
  const words: string[] = [];
  const rest: string[] = [];
  for (const a of own) (words.length < 2 && !a.startsWith('-') && rest.length === 0 ? words : rest).push(a);
  return makeTool(words[0] as Action | undefined, words[1], command)(rest, io);
};
