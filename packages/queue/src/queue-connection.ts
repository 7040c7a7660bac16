import * as fs from 'node:fs';
import * as os from 'node:os';
import {
  AckPolicy,
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  DiscardPolicy,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConnectionOptions,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import { ConfigError, EX, ToolError, type NatsConfig } from '@prompt-valet/core';

/**
 * The connection to the NATS cluster and the two streams of `dispatch: nats`
 * (docs/scale-out.md): a work-queue stream of jobs (each job goes to one
 * worker; an ack removes it) and a work-queue stream of results (an ack,
 * after pv-settle has answered for the run, removes it). Subjects carry the
 * run id (`jobs.<run id>`, `results.<run id>`), so the valet can ask the
 * stream about one run while it reconciles.
 */
export interface QueueConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

/** The durable consumer every worker shares on the jobs stream: one job, one worker. */
export const WORKERS_CONSUMER = 'pv-workers';
/** The valet's durable consumer on the results stream. */
export const VALET_CONSUMER = 'pv-valet';

/**
 * JetStream API calls. A request that reaches a stream or consumer while its
 * leader is being re-elected (a node died) is not answered at all: the
 * client waits out the timeout. So calls time out soon and are retried
 * (retryJetStream), rather than waiting long once.
 */
const JS_API_TIMEOUT_MS = 10_000;

/** How long a JetStream call is retried across leader elections before the tool gives up (75). */
const JS_RETRY_MS = 120_000;

/** Errors a retry can outlive: no answer (timeout), no responders (503) while a leader is elected, a lost connection. */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === 'TIMEOUT' || e?.code === '503' || /timeout|no responders|disconnect|connection closed|leader/i.test(String(e?.message ?? ''));
}

/** Run a JetStream call again while it fails transiently, saying so once; other errors are thrown at once. */
export async function retryJetStream<T>(what: string, call: () => Promise<T>, log: { warn(...a: unknown[]): void }): Promise<T> {
  const deadline = Date.now() + JS_RETRY_MS;
  let said = false;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline) {
        if (isTransient(err)) throw new ToolError('queue_unreachable', `${what}: no answer from NATS for ${JS_RETRY_MS / 1000} s (${(err as Error).message})`, EX.TEMPFAIL, err);
        throw err;
      }
      if (!said) log.warn(`${what}: ${(err as Error).message}; trying again (a NATS node may be electing a leader)`);
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Duplicate publishes (same message id) within this window are dropped by the server. */
const DUPLICATE_WINDOW_MS = 10 * 60 * 1000;

export const subjectFor = (stem: string, runId: string): string => `${stem}.${runId}`;

/** A subject stem given on the command line: one NATS token, no wildcard. */
export function checkSubjectStem(stem: unknown, what: string): string {
  if (typeof stem !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(stem)) {
    throw new ToolError('bad_subject', `${what} ${JSON.stringify(stem)} is not a subject name (letters, digits, _ and -)`, EX.USAGE);
  }
  return stem;
}

/** The host's identity: a .creds file (JWT + seed) or a bare user nkey seed (pv-install --role valet makes them); one at most. */
export function authenticatorFor(nats: Pick<NatsConfig, 'creds_file' | 'nkey_seed_file'>): ConnectionOptions['authenticator'] {
  if (nats.creds_file && nats.nkey_seed_file) throw new ConfigError('nats.creds_file and nats.nkey_seed_file are both set: keep one (a .creds file or a user nkey seed)');
  const read = (key: string, file: string): Uint8Array => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${key} ${file}: cannot read it (${(err as Error).message})`);
    }
  };
  if (nats.creds_file) return credsAuthenticator(read('nats.creds_file', nats.creds_file));
  if (nats.nkey_seed_file) {
    const seed = new TextDecoder().decode(read('nats.nkey_seed_file', nats.nkey_seed_file)).trim();
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) throw new ConfigError(`nats.nkey_seed_file ${nats.nkey_seed_file}: not a user nkey seed (one line, SU…)`);
    return nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  return undefined;
}

export async function connectQueue(nats: NatsConfig, name: string): Promise<QueueConnection> {
  const opts: ConnectionOptions = {
    servers: nats.servers,
    name: `${name}@${os.hostname()}`,
    // A node going away is normal in a cluster: keep trying the others.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  };
  const authenticator = authenticatorFor(nats);
  if (authenticator) opts.authenticator = authenticator;
  if (nats.tls_ca_file) opts.tls = { caFile: nats.tls_ca_file };
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (err) {
    throw new ToolError('queue_unreachable', `cannot reach NATS at ${nats.servers.join(', ')}: ${(err as Error).message}`, EX.TEMPFAIL, err);
  }
  // Not checked now: a cluster may still be electing its leader; every call retries on its own.
  const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: JS_API_TIMEOUT_MS });
  return {
    nc,
    js: nc.jetstream({ timeout: JS_API_TIMEOUT_MS }),
    jsm,
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}

/**
 * Make the stream (or bring its settings in line) and its durable consumer.
 * Only the valet's long-lived receiver (pv-queue recv) does it, once at its
 * start, for both streams: on a cluster, concurrent creates and updates of
 * one replicated stream from several clients time out (seen with 2.9.10),
 * and a worker's credentials need not allow it. Nothing is sent when the
 * settings already match.
 */
export async function ensureWorkQueue(
  q: QueueConnection,
  nats: NatsConfig,
  stream: string,
  stem: string,
  consumer: string,
): Promise<void> {
  const config: Partial<StreamConfig> = {
    name: stream,
    subjects: [`${stem}.*`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: nats.replicas,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  };
  const have = await q.jsm.streams.info(stream).then(
    (info) => info.config,
    (err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    },
  );
  if (!have) await q.jsm.streams.add(config);
  else if (have.subjects.join() !== config.subjects!.join() || have.num_replicas !== config.num_replicas || have.duplicate_window !== config.duplicate_window) {
    await q.jsm.streams.update(stream, config);
  }
  const consumerConfig = {
    durable_name: consumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(nats.ack_wait_seconds * 1000),
    max_deliver: nats.max_deliveries,
    filter_subject: `${stem}.*`,
  };
  const current = await q.jsm.consumers.info(stream, consumer).then(
    (info) => info.config,
    (err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    },
  );
  if (!current) await q.jsm.consumers.add(stream, consumerConfig);
  else if (current.ack_wait !== consumerConfig.ack_wait || current.max_deliver !== consumerConfig.max_deliver || current.filter_subject !== consumerConfig.filter_subject) {
    await q.jsm.consumers.update(stream, consumer, consumerConfig);
  }
}

/** The stream that keeps the jobs consumer's max-deliveries advisories (a plain NATS event, lost when nobody listens). */
export const advisoryStreamFor = (jobsStream: string): string => `${jobsStream}_MAX_DELIVERIES`;
export const maxDeliveriesSubject = (jobsStream: string): string => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${jobsStream}.${WORKERS_CONSUMER}`;

/**
 * Keep every max-deliveries advisory of the jobs consumer in a stream of its
 * own, so a job whose last delivery went to a worker that died is known to
 * the valet even if no receiver was running when it happened.
 */
export async function ensureAdvisoryStream(q: QueueConnection, nats: NatsConfig): Promise<void> {
  const name = advisoryStreamFor(nats.jobs_stream);
  const have = await q.jsm.streams.info(name).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
  if (!have) {
    await q.jsm.streams.add({
      name,
      subjects: [maxDeliveriesSubject(nats.jobs_stream)],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: nats.replicas,
    });
  }
  const consumer = await q.jsm.consumers.info(name, VALET_CONSUMER).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
  if (!consumer) await q.jsm.consumers.add(name, { durable_name: VALET_CONSUMER, ack_policy: AckPolicy.Explicit });
}

/** JetStream's "not found" (stream, consumer or message): a 404 in its API error. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { code?: number }; message?: unknown };
  return e?.api_error?.code === 404 || e?.code === '404' || /not found/i.test(String(e?.message ?? ''));
}
