import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { JsMsg } from 'nats';
import {
  claimRecordPath,
  EX,
  formatRecord,
  listClaimRecords,
  readJsonIfExists,
  readRecords,
  readRunStatusOrNone,
  readStepDone,
  runFile,
  runRootFor,
  SCHEMA_VERSION,
  ToolError,
  updateRunStatus,
  writeFileAtomic,
  writeRecord,
  type ClaimRecord,
  type ClaimSection,
  type Logger,
  type PvRecord,
  type RecordError,
  type TargetSection,
  type ValetConfig,
} from '@prompt-valet/core';
import { checkedArtifacts, deliveriesText, keptSections, parseResult, type ResultMessage } from './envelopes.js';
import { advisoryStreamFor, isNotFound, isTransient, subjectFor, VALET_CONSUMER, type QueueConnection } from './queue-connection.js';

/**
 * The valet's end of the queue: each result goes to the settling command
 * (pv-settle) as a record built from the valet's own claim and the worker's
 * checked sections, and is acked only once that command's output for the
 * run has been read back — a pipe write proves nothing. Results are handled
 * one at a time, so a result delivered twice finds the first one settled.
 */
export class ResultReceiver {
  private readonly settler: ChildProcess;
  private readonly settled: AsyncGenerator<PvRecord>;

  constructor(
    private readonly opts: {
      config: ValetConfig;
      q: QueueConnection;
      command: string[];
      jobsStem: string;
      resultsStem: string;
      log: Logger;
      env: NodeJS.ProcessEnv;
      stdout: NodeJS.WritableStream;
    },
  ) {
    this.settler = spawn(opts.command[0]!, opts.command.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: opts.env });
    this.settler.stdin!.on('error', () => undefined);
    this.settled = readRecords(this.settler.stdout!);
  }

  /** Settle one record through the command and return what it said. */
  private async settle(rec: PvRecord): Promise<PvRecord> {
    this.settler.stdin!.write(formatRecord(rec));
    const next = await this.settled.next();
    if (next.done) throw new ToolError('settler_gone', `${this.opts.command[0]} ended; results are left in the stream for the next start`, EX.TEMPFAIL);
    await writeRecord(this.opts.stdout, next.value);
    return next.value;
  }

  async handle(m: JsMsg): Promise<void> {
    const { log } = this.opts;
    const parsed = parseResult(m.data);
    if (!parsed.ok) {
      log.error(`result #${m.seq} dropped: ${parsed.reason}`);
      m.term(parsed.reason);
      return;
    }
    const r = parsed.value;
    const claim = await this.dispatchedClaim(r.run_id);
    if (!claim || claim.liveness?.kind !== 'dispatched' || claim.liveness.seq !== r.job_seq || claim.attempt !== r.attempt) {
      const status = await readRunStatusOrNone(runRootFor(this.opts.config, r.run_id));
      log.info(
        status?.settle
          ? `${r.run_id}: result from ${r.worker} for a run already settled; dropped`
          : `${r.run_id}: result from ${r.worker} for job #${r.job_seq}, which is not the run's dispatch here; dropped`,
      );
      await this.ack(m);
      return;
    }
    const rec = await this.recordOf(claim, r);
    const out = await this.settle(rec);
    log.info(`${claim.prompt_rel}: ${out.settle?.state ?? 'not settled'} (ran on ${r.worker}, delivery ${r.deliveries})`);
    await this.ack(m);
  }

  /** An ack NATS did not confirm is not an error: the result comes again and finds its run settled. */
  private async ack(m: JsMsg): Promise<void> {
    const confirmed = await m.ackAck().catch((err: unknown) => {
      if (!isTransient(err)) throw err;
      return false;
    });
    if (!confirmed) this.opts.log.warn(`result #${m.seq}: the ack was not confirmed; a second delivery will be dropped as settled`);
  }

  private async dispatchedClaim(runId: string): Promise<ClaimRecord | undefined> {
    const claim = await readJsonIfExists<ClaimRecord>(claimRecordPath(this.opts.config, runId));
    return claim?.run_id === runId ? claim : undefined;
  }

  /** The record pv-settle gets: the claim and target are the valet's own; the rest is the worker's, checked. */
  private async recordOf(claim: ClaimRecord, r: ResultMessage): Promise<PvRecord> {
    const { config } = this.opts;
    const runRoot = runRootFor(config, claim.run_id);
    const artifacts = checkedArtifacts(r.artifacts);
    let lastMessage: string | undefined;
    if (artifacts.last_message !== undefined) {
      lastMessage = runFile(runRoot, 'lastMessage');
      await writeFileAtomic(lastMessage, artifacts.last_message);
    }
    const kept = keptSections(r.record, lastMessage);
    await updateRunStatus(runRoot, {
      worker: r.worker,
      deliveries: r.deliveries,
      ...(artifacts.usage ? { usage: artifacts.usage } : {}),
      ...(kept.publish?.pr_url ? { pr_url: kept.publish.pr_url } : {}),
      ...(kept.publish ? { outcome: kept.publish.outcome } : {}),
    });
    const target = await readStepDone<TargetSection>(runRoot, 'resolve');
    return {
      v: SCHEMA_VERSION,
      run_id: claim.run_id,
      claim: claimSectionOf(claim, config),
      ...(target ? { target } : {}),
      ...kept,
      worker: r.worker,
    };
  }

  /**
   * Jobs delivered `nats.max_deliveries` times without an answer (the worker
   * of the last delivery died): the server says so in an advisory, kept in a
   * stream (ensureAdvisoryStream). The run settles as error max_deliveries
   * and the job, which the stream would otherwise keep undeliverable, is
   * removed.
   */
  async settleExhaustedJobs(): Promise<void> {
    const { config, q, log } = this.opts;
    const consumer = await q.js.consumers.get(advisoryStreamFor(config.nats.jobs_stream), VALET_CONSUMER);
    // Asked first: a pull waits at least a second even when nothing is there.
    while ((await consumer.info()).num_pending > 0) {
      const m = await consumer.next({ expires: 1000 });
      if (!m) return;
      const advisory = parseAdvisory(m.data);
      if (!advisory || advisory.stream !== config.nats.jobs_stream) {
        log.warn(`advisory #${m.seq} dropped: not a max-deliveries advisory of ${config.nats.jobs_stream}`);
        await this.ack(m);
        continue;
      }
      const claim = (await listClaimRecords(config.processed))
        .map((c) => c.record)
        .find((c) => c.liveness?.kind === 'dispatched' && c.liveness.stream === advisory.stream && c.liveness.seq === advisory.stream_seq);
      if (claim && !(await hasMessage(q, config.nats.results_stream, { last_by_subj: subjectFor(this.opts.resultsStem, claim.run_id) }))) {
        const error: RecordError = {
          step: 'queue',
          code: 'max_deliveries',
          message: `gave up after ${deliveriesText(advisory.deliveries)} (nats.max_deliveries ${config.nats.max_deliveries}): no worker answered for job ${advisory.stream} #${advisory.stream_seq} (each died or lost NATS)`,
          retryable: false,
        };
        log.warn(`${claim.prompt_rel}: ${error.message}`);
        const target = await readStepDone<TargetSection>(runRootFor(config, claim.run_id), 'resolve');
        await this.settle({ v: SCHEMA_VERSION, run_id: claim.run_id, claim: claimSectionOf(claim, config), ...(target ? { target } : {}), error });
      }
      await q.jsm.streams.deleteMessage(advisory.stream, advisory.stream_seq).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      await this.ack(m);
    }
  }

  /**
   * Dispatched claims whose job is neither in the jobs stream nor answered
   * in the results stream ended without a result (a job removed by hand, a
   * worker that terminated it without answering, a lost advisory): they
   * settle as an error saying so, instead of staying "running" forever.
   */
  async reconcile(): Promise<void> {
    const { config, q, log } = this.opts;
    for (const { record } of await listClaimRecords(config.processed)) {
      const live = record.liveness;
      if (live?.kind !== 'dispatched' || live.stream !== config.nats.jobs_stream) continue;
      if (await hasMessage(q, live.stream, { seq: live.seq })) continue;
      if (await hasMessage(q, config.nats.results_stream, { last_by_subj: subjectFor(this.opts.resultsStem, record.run_id) })) continue;
      // Read again: the result may have been settled since the list was made.
      const now = await this.dispatchedClaim(record.run_id);
      if (now?.liveness?.kind !== 'dispatched' || now.liveness.seq !== live.seq) continue;
      const error: RecordError = {
        step: 'queue',
        code: 'dispatch_lost',
        message: `job ${live.stream} #${live.seq} left the queue without a result (a worker gave up on it, or it was removed); see the workers' logs`,
        retryable: false,
      };
      log.warn(`${record.prompt_rel}: ${error.message}`);
      const target = await readStepDone<TargetSection>(runRootFor(config, record.run_id), 'resolve');
      await this.settle({ v: SCHEMA_VERSION, run_id: record.run_id, claim: claimSectionOf(now, config), ...(target ? { target } : {}), error });
    }
  }

  async close(): Promise<void> {
    this.settler.stdin!.end();
    await new Promise<void>((resolve) => {
      if (this.settler.exitCode !== null || this.settler.signalCode !== null) resolve();
      else this.settler.once('close', () => resolve());
    });
  }
}

/** The claim section of a record, from the valet's ledger and configuration alone. */
function claimSectionOf(claim: ClaimRecord, config: ValetConfig): ClaimSection {
  return {
    inbox: config.inbox,
    rel: claim.rel,
    path: path.join(config.inbox, claim.rel),
    prompt_name: path.basename(claim.prompt_rel),
    prompt_rel: claim.prompt_rel,
    run_root: runRootFor(config, claim.run_id),
    attempt: claim.attempt,
    claimed_at: claim.claimed_at,
    ino: claim.ino,
    ledger: claimRecordPath(config, claim.run_id),
    ...(claim.liveness ? { liveness: claim.liveness } : {}),
    ...(claim.resumed ? { resumed: claim.resumed } : {}),
  };
}

interface MaxDeliveriesAdvisory {
  stream: string;
  stream_seq: number;
  deliveries: number;
}

function parseAdvisory(data: Uint8Array): MaxDeliveriesAdvisory | undefined {
  try {
    const a = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
    if (typeof a.stream === 'string' && Number.isInteger(a.stream_seq) && Number.isInteger(a.deliveries)) {
      return { stream: a.stream, stream_seq: a.stream_seq as number, deliveries: a.deliveries as number };
    }
  } catch {
    // not JSON: not an advisory
  }
  return undefined;
}

async function hasMessage(q: QueueConnection, stream: string, query: { seq: number } | { last_by_subj: string }): Promise<boolean> {
  try {
    await q.jsm.streams.getMessage(stream, query);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
