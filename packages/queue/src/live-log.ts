import * as fsp from 'node:fs/promises';
import type { Msg, NatsConnection, Subscription } from 'nats';
import {
  claimRecordPath,
  isRunId,
  isWorkerName,
  newFileTail,
  readAppendedLines,
  readJsonIfExists,
  runFile,
  runRootFor,
  type ClaimRecord,
  type Logger,
  type ValetConfig,
  writeFileAtomic,
} from '@prompt-valet/core';
import { subjectFor } from './queue-connection.js';

/**
 * A remote run's live log (docs/scale-out.md): the worker publishes each new
 * line of its run folder's agent.log, and its command's stderr, to
 * `logs.<run id>`; the valet appends them, marked with the worker's name, to
 * its own run folder's agent.log, which pv-web and pv-status follow as they
 * follow a local run. Core NATS, not JetStream: a line lost in transit costs
 * nothing but the line (the whole log stays in the worker's run folder).
 */
export interface LogLine {
  worker: string;
  line: string;
}

/** Longest line carried; the rest stays in the worker's own log. */
const MAX_LINE_CHARS = 2000;

export function publishLogLine(nc: NatsConnection, stem: string, runId: string, worker: string, line: string): void {
  if (nc.isClosed()) return;
  const payload: LogLine = { worker, line: line.slice(0, MAX_LINE_CHARS) };
  nc.publish(subjectFor(stem, runId), JSON.stringify(payload));
}

/** Publish what is appended to `file` until stop() (which sends what is left). */
export function followFile(file: string, onLine: (line: string) => void, everyMs = 500): { stop(): Promise<void> } {
  const tail = newFileTail();
  let reading: Promise<void> = Promise.resolve();
  const readMore = async () => {
    for (let got = await readAppendedLines(file, tail); got; got = await readAppendedLines(file, tail)) {
      for (const l of got.text.split('\n')) onLine(l);
    }
  };
  const timer = setInterval(() => {
    reading = reading.then(readMore).catch(() => undefined);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      reading = reading.then(readMore).catch(() => undefined);
      await reading;
      if (tail.partial.length > 0) onLine(tail.partial.toString('utf8'));
    },
  };
}

/** The valet's side: append each checked line to the dispatched run's agent.log. */
export function mirrorRemoteLogs(nc: NatsConnection, stem: string, config: ValetConfig, log: Logger): Subscription {
  const dispatched = new Map<string, { ok: boolean; at: number }>();
  // Which worker each run's lines come from, so pv-status and pv-web can say where it runs;
  // a file of its own (worker.txt), not status.json, which pv-settle may be rewriting meanwhile.
  const workerOf = new Map<string, string>();
  let writing: Promise<void> = Promise.resolve();
  const isDispatchedHere = async (runId: string): Promise<boolean> => {
    const known = dispatched.get(runId);
    if (known && Date.now() - known.at < 5000) return known.ok;
    const claim = await readJsonIfExists<ClaimRecord>(claimRecordPath(config, runId)).catch(() => undefined);
    const ok = claim?.run_id === runId && claim.liveness?.kind === 'dispatched';
    dispatched.set(runId, { ok, at: Date.now() });
    return ok;
  };
  const append = async (m: Msg) => {
    const runId = m.subject.slice(stem.length + 1);
    if (!isRunId(runId)) return;
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(m.data));
    } catch {
      return; // not one of ours
    }
    const p = payload as Partial<LogLine>;
    if (typeof p.worker !== 'string' || typeof p.line !== 'string' || !isWorkerName(p.worker)) return;
    if (!(await isDispatchedHere(runId))) return;
    const runRoot = runRootFor(config, runId);
    if (workerOf.get(runId) !== p.worker) {
      await writeFileAtomic(runFile(runRoot, 'worker'), `${p.worker}\n`);
      workerOf.set(runId, p.worker);
      if (workerOf.size > 10_000) workerOf.delete(workerOf.keys().next().value!);
    }
    const line = p.line.slice(0, MAX_LINE_CHARS).replace(/[\r\n]/g, ' ');
    await fsp.appendFile(runFile(runRoot, 'log'), `[${p.worker}] ${line}\n`);
  };
  return nc.subscribe(`${stem}.*`, {
    callback: (err, m) => {
      if (err) return;
      // One at a time, in arrival order: lines of a run stay in their order.
      writing = writing.then(() => append(m)).catch((e: unknown) => log.warn(`live log: ${(e as Error).message}`));
    },
  });
}
