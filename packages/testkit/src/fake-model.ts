import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expectSyntaxError } from '@prompt-valet/core';

/**
 * A local fake of the OpenAI Responses API that the REAL `codex` binary
 * talks to (`wire_api = "responses"`). codex only ever sends
 * `POST /v1/responses` and reads a server-sent event stream back.
 *
 * API
 *
 *   const model = await startFakeModel([
 *     execTurn('echo hi > f.txt', { workdir: checkout }),  // a tool call
 *     messageTurn('all done'),                              // the final answer
 *   ]);
 *   const home = await writeCodexHome(dir, model);  // CODEX_HOME folder
 *   spawn(codex, ['exec', …], { env: { ...process.env, ...home.env } });
 *   …
 *   model.requests          // every request received, in order
 *   model.toolOutputs()     // the `function_call_output` items codex sent back
 *   await model.close();
 *
 * Each POST takes the next turn of the script. A turn is one of:
 *   - `messageTurn(text, usage?)`  a final assistant message: codex ends the run.
 *   - `execTurn(cmd, {workdir?, yieldTimeMs?})`  an `exec_command` function
 *     call: codex runs `cmd` in a shell (in `workdir`, default codex's --cd
 *     folder), then POSTs again with the output; script the next turn
 *     (usually a message). codex waits up to `yieldTimeMs` for the command,
 *     then answers "still running" and leaves it running in the background.
 *     codex starts each command in its own session and kills that session
 *     when the command ends, so `sleep 300 &` only outlives the call if the
 *     command itself is still running (e.g. ends with `wait`).
 *   - `stallTurn()`                headers are sent, the body never comes: codex
 *     waits (an idle-timeout test). The socket is destroyed by `close()`.
 *   - `errorTurn(status, body)`    a plain HTTP error with a JSON body.
 *   - `slowTurn(chunks, intervalMs)` a message streamed as text deltas, one
 *     every `intervalMs`, then the final message (a run that takes a while
 *     but keeps talking).
 * `model.push(...turns)` appends turns after start. A request that arrives
 * after the script is used up (codex may send requests nobody scripted, e.g.
 * a follow-up turn) is answered with `messageTurn('done')` and counted in
 * `model.unscripted`, so a test never hangs on an unexpected request.
 * `model.waitForRequests(n)` resolves once n requests have arrived.
 *
 * codex needs a provider with an API-key variable: `writeCodexHome` writes a
 * `config.toml` pointing at the fake with `env_key = MOCK_API_KEY` and returns
 * the environment to run codex with (`CODEX_HOME` and the key). Retries are
 * turned off so an error turn fails codex at once. Never run codex against a
 * closed fake: with nothing listening it retries forever; bound every run.
 */

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export type FakeTurn =
  | { kind: 'message'; text: string; usage?: Usage }
  | { kind: 'exec'; cmd: string; workdir?: string; callId?: string; yieldTimeMs?: number }
  | { kind: 'stall' }
  | { kind: 'error'; status: number; body: string }
  | { kind: 'slow'; chunks: string[]; intervalMs: number; usage?: Usage };

export interface FakeRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** the parsed JSON body (undefined if it was not JSON) */
  body: unknown;
  /** the turn that answered it */
  turn: FakeTurn;
  scripted: boolean;
}

export interface FakeModel {
  /** `http://127.0.0.1:PORT/v1`, the provider's base_url */
  baseUrl: string;
  port: number;
  requests: FakeRequest[];
  /** how many requests were answered with the default message */
  readonly unscripted: number;
  push(...turns: FakeTurn[]): void;
  /** the `output` of each `function_call_output` item codex sent, in order (deduplicated by call id) */
  toolOutputs(): string[];
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_USAGE: Usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15 };

export function messageTurn(text: string, usage: Usage = DEFAULT_USAGE): FakeTurn {
  return { kind: 'message', text, usage };
}

export function execTurn(cmd: string, opts: { workdir?: string; callId?: string; yieldTimeMs?: number } = {}): FakeTurn {
  return { kind: 'exec', cmd, ...opts };
}

export function stallTurn(): FakeTurn {
  return { kind: 'stall' };
}

export function errorTurn(status: number, body: string): FakeTurn {
  return { kind: 'error', status, body };
}

export function slowTurn(chunks: string[], intervalMs: number, usage: Usage = DEFAULT_USAGE): FakeTurn {
  return { kind: 'slow', chunks, intervalMs, usage };
}

function sse(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

function messageItem(text: string, id: string): Record<string, unknown> {
  return { type: 'message', id, role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
}

function completed(id: string, usage: Usage = DEFAULT_USAGE): string {
  return sse('response.completed', { response: { id, usage } });
}

/**
 * A responder decides each turn from the request itself, so one fake can
 * serve many concurrent codex runs (the end-to-end tests, the demo), where a
 * single shared script would interleave. It is consulted when the script is
 * used up; `undefined` falls back to the default message.
 */
export type FakeResponder = (body: unknown) => FakeTurn | undefined;

/** The text of every `input_text` item of a request, joined. */
export function requestText(body: unknown): string {
  const input = (body as { input?: unknown } | undefined)?.input;
  if (!Array.isArray(input)) return '';
  const texts: string[] = [];
  for (const item of input as Array<Record<string, unknown>>) {
    const content = item?.content;
    if (!Array.isArray(content)) continue;
    for (const c of content as Array<Record<string, unknown>>) {
      if (typeof c?.text === 'string') texts.push(c.text);
    }
  }
  return texts.join('\n');
}

/**
 * The newest prompt (a user message; codex's own context items, such as
 * `<environment_context>`, start with a tag) and whether a tool output
 * follows it. Without one, all the request's text.
 */
function latestPrompt(body: unknown): { text: string; toolOutputAfter: boolean } {
  const input = (body as { input?: unknown } | undefined)?.input;
  if (!Array.isArray(input)) return { text: '', toolOutputAfter: false };
  const items = input as Array<Record<string, unknown>>;
  const textOf = (item: Record<string, unknown>) => (Array.isArray(item?.content) ? item.content as Array<Record<string, unknown>> : [])
    .map((c) => (typeof c?.text === 'string' ? c.text : '')).join('\n');
  let at = -1;
  items.forEach((item, i) => {
    if (item?.role === 'user' && !textOf(item).trimStart().startsWith('<')) at = i;
  });
  if (at < 0) return { text: requestText(body), toolOutputAfter: items.some((i) => i?.type === 'function_call_output') };
  return { text: textOf(items[at]!), toolOutputAfter: items.slice(at + 1).some((i) => i?.type === 'function_call_output') };
}

/**
 * The "scripted local model" of the demo and the end-to-end tests: the
 * prompt itself says what the agent does. The first fenced block tagged
 * `sh` in the prompt is run with exec_command in the checkout; then the
 * model answers with a final message naming what it ran. A prompt without
 * such a block gets a final message at once (an agent that changes nothing).
 */
export function promptScriptResponder(opts: { yieldTimeMs?: number } = {}): FakeResponder {
  return (body) => {
    // A resumed session (a follow-up) carries the earlier turns too: the newest
    // prompt is the one being answered now.
    const { text, toolOutputAfter } = latestPrompt(body);
    const m = /```sh\n([\s\S]*?)\n```/.exec(text);
    if (!m) return messageTurn('Nothing to do: the prompt holds no sh block.');
    if (!toolOutputAfter) return execTurn(m[1]!, opts.yieldTimeMs === undefined ? {} : { yieldTimeMs: opts.yieldTimeMs });
    return messageTurn(`Ran the prompt's script:\n\n    ${m[1]!.split('\n').join('\n    ')}\n`);
  };
}

export async function startFakeModel(script: FakeTurn[] = [], opts: { respond?: FakeResponder } = {}): Promise<FakeModel> {
  const turns = [...script];
  const requests: FakeRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters: Array<() => void> = [];
  let unscripted = 0;
  let seq = 0;

  const answer = (turn: FakeTurn, res: http.ServerResponse): void => {
    const id = `resp_${++seq}`;
    if (turn.kind === 'error') {
      res.writeHead(turn.status, { 'content-type': 'application/json' });
      res.end(turn.body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(sse('response.created', { response: { id } }));
    switch (turn.kind) {
      case 'stall':
        // Headers and `created` only: codex waits for more, which never comes.
        return;
      case 'message':
        res.write(sse('response.output_item.done', { item: messageItem(turn.text, `msg_${seq}`) }));
        res.end(completed(id, turn.usage));
        return;
      case 'exec': {
        const args: Record<string, unknown> = { cmd: turn.cmd, login: false };
        if (turn.workdir) args.workdir = turn.workdir;
        if (turn.yieldTimeMs !== undefined) args.yield_time_ms = turn.yieldTimeMs;
        const item = {
          type: 'function_call',
          id: `fc_${seq}`,
          call_id: turn.callId ?? `call_${seq}`,
          name: 'exec_command',
          arguments: JSON.stringify(args),
        };
        res.write(sse('response.output_item.done', { item }));
        res.end(completed(id));
        return;
      }
      case 'slow': {
        const itemId = `msg_${seq}`;
        res.write(sse('response.output_item.added', { item: { type: 'message', id: itemId, role: 'assistant', content: [] } }));
        let i = 0;
        const tick = (): void => {
          if (res.destroyed) return;
          if (i < turn.chunks.length) {
            res.write(sse('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta: turn.chunks[i++] }));
            const timer = setTimeout(() => {
              timers.delete(timer);
              tick();
            }, turn.intervalMs);
            timers.add(timer);
            return;
          }
          res.write(sse('response.output_item.done', { item: messageItem(turn.chunks.join(''), itemId) }));
          res.end(completed(id, turn.usage));
        };
        tick();
        return;
      }
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch (err) {
        expectSyntaxError(err);
        body = undefined;
      }
      const isTurn = req.method === 'POST' && (req.url ?? '').split('?')[0]!.endsWith('/responses');
      let turn: FakeTurn;
      let scripted = false;
      if (!isTurn) {
        // Not part of the conversation (e.g. a models listing): 404, no turn used.
        turn = { kind: 'error', status: 404, body: JSON.stringify({ error: { message: 'not found' } }) };
      } else if (turns.length > 0) {
        turn = turns.shift()!;
        scripted = true;
      } else {
        const answered = opts.respond?.(body);
        if (answered) {
          turn = answered;
          scripted = true;
        } else {
          turn = messageTurn('done');
          unscripted++;
        }
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, turn, scripted });
      for (const w of waiters.splice(0)) w();
      answer(turn, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    get unscripted() {
      return unscripted;
    },
    push(...more) {
      turns.push(...more);
    },
    toolOutputs() {
      const seen = new Map<string, string>();
      for (const r of requests) {
        const input = (r.body as { input?: unknown } | undefined)?.input;
        if (!Array.isArray(input)) continue;
        for (const item of input as Array<Record<string, unknown>>) {
          if (item?.type !== 'function_call_output') continue;
          const out = item.output;
          const text = typeof out === 'string' ? out : JSON.stringify(out);
          seen.set(String(item.call_id), text);
        }
      }
      return [...seen.values()];
    },
    async waitForRequests(n, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (requests.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`fake model: ${requests.length} of ${n} requests after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 500));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface CodexHome {
  /** the CODEX_HOME folder */
  dir: string;
  /** environment to run codex with: CODEX_HOME and the provider's key variable */
  env: Record<string, string>;
}

export interface CodexHomeOptions {
  /** the provider's API-key variable (default MOCK_API_KEY) */
  envKey?: string;
  model?: string;
  /** more TOML appended to config.toml */
  extraToml?: string;
}

/**
 * Write `<dir>/config.toml` so that codex uses the fake as its model
 * provider. `dir` is created if missing. Reused unchanged by every test that
 * runs codex (pv-run-codex's own tests, the end-to-end watcher tests).
 */
export async function writeCodexHome(dir: string, model: Pick<FakeModel, 'baseUrl'>, opts: CodexHomeOptions = {}): Promise<CodexHome> {
  const envKey = opts.envKey ?? 'MOCK_API_KEY';
  await fsp.mkdir(dir, { recursive: true });
  const toml = [
    `model = ${JSON.stringify(opts.model ?? 'mock-model')}`,
    'model_provider = "mock"',
    // No retries: an error turn ends codex at once instead of after backoff.
    '',
    '[model_providers.mock]',
    'name = "mock"',
    `base_url = ${JSON.stringify(model.baseUrl)}`,
    'wire_api = "responses"',
    `env_key = ${JSON.stringify(envKey)}`,
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
    opts.extraToml ?? '',
  ].join('\n');
  await fsp.writeFile(path.join(dir, 'config.toml'), toml);
  return { dir, env: { CODEX_HOME: dir, [envKey]: 'test-key' } };
}
