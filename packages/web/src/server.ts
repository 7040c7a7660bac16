import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { expectErrno, FrontMatterError, firstHeading, parsePrompt, readQueue, RUN_FILES, type Logger, type ValetConfig } from '@prompt-valet/core';
import { bearerToken, isLoopbackHost, tokenMatches, type AccessPolicy } from './auth.js';
import { HttpError } from './http-error.js';
import { resolveJob } from './jobs.js';
import { streamLog } from './live-log.js';
import { abortRun, apiRun, listRuns, logTail, retryRun, runDetail, runRoot } from './runs.js';
import { loadStaticFiles } from './static-files.js';
import { readUpload, submitPrompt, type Submission, type Submitted } from './submit.js';
import { findTarget, listTargets } from './targets.js';
import { tokenTotalsReader } from './tokens.js';
import { followUpsOf, submitFollowUp } from './follow-up.js';

export interface ServerOptions {
  config: ValetConfig;
  policy: AccessPolicy;
  log: Logger;
  /** how often a live log stream looks at the file (ms) */
  pollMs?: number;
}

/** Most files one upload may carry. */
export const MAX_FILES = 20;
const TAIL_BYTES = 64 * 1024;
const RUN_STATES = ['claimed', 'resolved', 'cloned', 'running', 'published', 'done', 'error', 'retry'];

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function hostnameOf(hostHeader: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(hostHeader);
  return m?.[1] ?? hostHeader;
}

/** A browser names the page that sent a request in Origin; curl and scripts send none. */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === host;
  } catch (err) {
    expectErrno(err, 'ERR_INVALID_URL');
    return false; // "null" (a sandboxed frame, a file: page) and anything unreadable
  }
}

function queryString(q: unknown, key: string): string | undefined {
  const v = (q as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function nameFor(text: string, given: unknown): string {
  if (typeof given === 'string' && given.trim()) return given;
  try {
    const { front_matter, body } = parsePrompt(text);
    const title = front_matter.title;
    return (typeof title === 'string' && title) || firstHeading(body) || 'prompt';
  } catch (err) {
    if (!(err instanceof FrontMatterError)) throw err;
    return 'prompt';
  }
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { config, policy, log } = opts;
  const max = config.web.max_upload_bytes;
  const files = loadStaticFiles();
  let closing = false;

  const app = Fastify({
    logger: false,
    // JSON escapes can double a text's size; the text itself is held to max_upload_bytes below.
    bodyLimit: 2 * max + 64 * 1024,
    forceCloseConnections: true,
    return503OnClosing: true,
  });
  // Only JSON and multipart/form-data are accepted: without a text/plain
  // parser such a body is a 415, and a cross-site form cannot post JSON.
  app.removeContentTypeParser('text/plain');
  await app.register(multipart, {
    limits: { fileSize: max, files: MAX_FILES, fields: 10, fieldSize: 4096, parts: MAX_FILES + 10, headerPairs: 100 },
  });

  app.addHook('onRequest', async (req, reply) => {
    void reply.headers(SECURITY_HEADERS);
    // On loopback, a Host that is not a loopback name is a DNS-rebinding page.
    if (policy.loopback && !isLoopbackHost(hostnameOf(req.headers.host ?? ''))) {
      throw new HttpError(421, 'bad_host', 'this server answers only to a loopback host name');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      if (!sameOrigin(req.headers.origin, req.headers.host) || req.headers['sec-fetch-site'] === 'cross-site') {
        throw new HttpError(403, 'cross_origin', 'requests from other sites are refused');
      }
    }
    if (policy.token !== undefined && req.url.startsWith('/api/') && req.url !== '/api/health') {
      if (!tokenMatches(policy.token, bearerToken(req.headers.authorization))) {
        void reply.header('www-authenticate', 'Bearer realm="pv-web"');
        throw new HttpError(401, 'unauthorized', 'a valid token is required (Authorization: Bearer <token>)');
      }
    }
  });
  app.addHook('onClose', async () => {
    closing = true;
  });
  app.addHook('onResponse', async (req, reply) => {
    // The URL never carries the token (it is only accepted in a header).
    log.info(`${req.method} ${req.url.split('?')[0]} ${reply.statusCode}`);
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      log.error(`internal error: ${err.stack ?? err.message}`);
      return reply.code(500).send({ error: { code: 'internal', message: 'internal error (see the pv-web log)' } });
    }
    const code = status === 413 ? 'too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
    return reply.code(status).send({ error: { code, message: err.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  // ---- page ---------------------------------------------------------------
  app.get('/*', async (req, reply) => {
    const f = files.get(req.url.split('?')[0]!);
    if (!f) throw new HttpError(404, 'not_found', 'no such page');
    return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
  });

  // ---- reading --------------------------------------------------------------
  app.get('/api/health', async () => ({ ok: true, v: 1, auth: policy.token === undefined ? 'none' : 'token' }));

  app.get('/api/targets', async () => ({ targets: await listTargets(config) }));

  app.get('/api/queue', async (req) => {
    const recent = Math.min(200, Math.max(1, Number(queryString(req.query, 'recent') ?? 20) || 20));
    const q = await readQueue(config, { recent });
    return { ...q, running: q.running.map((r) => apiRun(r, config)), recent: q.recent.map((r) => apiRun(r, config)) };
  });

  const tokenTotals = tokenTotalsReader(config);
  app.get('/api/tokens', async (req) => tokenTotals(queryString(req.query, 'days')));

  app.get('/api/runs', async (req) => {
    const state = queryString(req.query, 'state');
    if (state && !RUN_STATES.includes(state)) throw new HttpError(400, 'bad_state', `state must be one of ${RUN_STATES.join(', ')}`);
    const limitRaw = queryString(req.query, 'limit');
    const limit = limitRaw === undefined ? 50 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'bad_limit', 'limit must be a whole number from 1 to 1000');
    const filter = { state, repo: queryString(req.query, 'repo'), branch: queryString(req.query, 'branch'), limit };
    return { runs: await listRuns(config, filter) };
  });

  app.get<{ Params: { id: string } }>('/api/runs/:id', async (req) => {
    const detail = await runDetail(config, req.params.id);
    return { ...detail, follow_ups: await followUpsOf(config, detail.status) };
  });

  app.get<{ Params: { id: string } }>('/api/runs/:id/log', async (req, reply) => {
    const bytes = Number(queryString(req.query, 'bytes') ?? TAIL_BYTES);
    const { text, size } = await logTail(config, req.params.id, Number.isInteger(bytes) && bytes > 0 ? Math.min(bytes, 4 * 1024 * 1024) : TAIL_BYTES);
    return reply.type('text/plain; charset=utf-8').header('x-log-size', String(size)).send(text);
  });

  app.get<{ Params: { id: string } }>('/api/runs/:id/log/stream', async (req, reply) => {
    const root = await runRoot(config, req.params.id);
    const resume = Number(req.headers['last-event-id'] ?? queryString(req.query, 'from'));
    const from = Number.isInteger(resume) && resume >= 0 ? resume : await tailStart(path.join(root, RUN_FILES.log), TAIL_BYTES);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.write(': pv-web live log\n\n');
    let gone = false;
    req.raw.on('close', () => (gone = true));
    try {
      await streamLog(res, { runRoot: root, from, pollMs: opts.pollMs ?? 250, heartbeatMs: 15_000 }, () => gone || closing || res.destroyed);
    } catch (err) {
      log.error(`live log of ${req.params.id}: ${(err as Error).message}`);
    }
    res.end();
    log.info(`GET ${req.url.split('?')[0]} stream ended`);
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (req) => resolveJob(config, req.params.id));

  // ---- changing -------------------------------------------------------------
  app.post<{ Params: { id: string } }>('/api/runs/:id/abort', async (req, reply) => reply.code(202).send(await abortRun(config, req.params.id)));

  app.post<{ Params: { id: string } }>('/api/runs/:id/retry', async (req, reply) => reply.code(201).send(await retryRun(config, req.params.id)));

  app.post<{ Params: { id: string } }>('/api/runs/:id/follow-up', async (req, reply) => {
    const { subs } = readJsonSubmission(req, max);
    const sub = subs[0]!;
    const job = await submitFollowUp(config, req.params.id, { name: sub.name, text: Buffer.from(sub.bytes).toString('utf8') });
    log.notice(`submitted ${job.prompt_rel}, a follow-up of ${req.params.id}`);
    return reply.code(201).send({ jobs: [job] });
  });

  app.post('/api/prompts', async (req, reply) => {
    const { targetId, subs } = req.isMultipart() ? await readUpload(req, config) : readJsonSubmission(req, max);
    const target = await findTarget(config, targetId);
    if (!target) throw new HttpError(404, 'no_such_target', `no target ${JSON.stringify(String(targetId ?? '')).slice(0, 200)}; GET /api/targets lists them`);
    const jobs: Submitted[] = [];
    for (const sub of subs) jobs.push(await submitPrompt(config, target, sub));
    log.notice(`submitted ${jobs.map((j) => j.prompt_rel).join(', ')}`);
    return reply.code(201).send({ jobs });
  });

  return app;
}

function readJsonSubmission(req: FastifyRequest, max: number): { targetId: unknown; subs: Submission[] } {
  const ct = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\b/i.test(ct)) throw new HttpError(415, 'unsupported_media_type', 'send application/json or multipart/form-data');
  const body = req.body as { target?: unknown; name?: unknown; text?: unknown } | null;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'bad_request', 'the body must be a JSON object {target, name, text}');
  if (typeof body.text !== 'string') throw new HttpError(400, 'bad_request', '"text" (the prompt, Markdown) is required');
  const bytes = Buffer.from(body.text, 'utf8');
  if (bytes.length > max) throw new HttpError(413, 'too_large', `the prompt is ${bytes.length} bytes; web.max_upload_bytes is ${max}`);
  if (body.name !== undefined && typeof body.name !== 'string') throw new HttpError(400, 'bad_request', '"name" must be a string');
  return { targetId: body.target, subs: [{ name: nameFor(body.text, body.name), bytes }] };
}

/** Where a live log starts by default: the last `maxBytes`, from a line start. */
async function tailStart(file: string, maxBytes: number): Promise<number> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return 0;
  }
  try {
    const { size } = await fh.stat();
    if (size <= maxBytes) return 0;
    const start = size - maxBytes;
    const buf = Buffer.alloc(maxBytes);
    await fh.read(buf, 0, maxBytes, start);
    const nl = buf.indexOf(0x0a);
    return nl < 0 ? start : start + nl + 1;
  } finally {
    await fh.close();
  }
}
