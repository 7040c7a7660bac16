import * as http from 'node:http';
import * as https from 'node:https';
import type { Logger, Webhook } from '@prompt-valet/core';
import { renderNotification, type Notification, type Rendered } from './message.js';

export interface DeliveryPolicy {
  /** one attempt, from connect to the end of the answer */
  timeoutMs: number;
  /** attempts after the first */
  retries: number;
  /** before retry n (1-based): backoffMs × 2^(n-1), unless the server says Retry-After */
  backoffMs: number;
  /** requests in flight to one webhook at once */
  concurrency: number;
}

export type PostResult =
  | { ok: true; status: number }
  | { ok: false; retryable: boolean; reason: string; retryAfterMs?: number };

/** A longer Retry-After is not waited for: the notification counts as failed. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Notifications waiting for one webhook; beyond this the oldest are dropped (a dead webhook must not grow memory for ever). */
export const MAX_QUEUED_PER_WEBHOOK = 1000;
/** How much of an error answer is kept for the log line. */
const MAX_ERROR_BODY = 200;

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/**
 * One POST. Never throws: every outcome is a PostResult. No keep-alive
 * agent, so no idle socket keeps the process alive at the end of input.
 */
export function postOnce(rendered: Rendered, timeoutMs: number, signal: AbortSignal): Promise<PostResult> {
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const finish = (r: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const request = (rendered.url.protocol === 'https:' ? https : http).request(rendered.url, {
      method: 'POST',
      agent: false,
      signal,
      headers: { 'content-type': rendered.contentType, 'content-length': Buffer.byteLength(rendered.body), 'user-agent': 'prompt-valet/pv-notify' },
    });
    const timer = setTimeout(() => {
      finish({ ok: false, retryable: true, reason: `no answer within ${timeoutMs / 1000} s` });
      request.destroy();
    }, timeoutMs);
    request.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < MAX_ERROR_BODY) body += chunk;
      });
      res.on('error', () => finish({ ok: false, retryable: true, reason: `HTTP ${status}, answer cut short` }));
      res.on('end', () => {
        if (status >= 200 && status < 300) return finish({ ok: true, status });
        const retryable = status === 408 || status === 429 || status >= 500;
        const after = retryAfterMs(res.headers['retry-after']);
        // The answer is someone else's text: no control characters reach the log.
        const text = body.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, MAX_ERROR_BODY);
        finish({ ok: false, retryable, reason: `HTTP ${status}${text ? ` ${text}` : ''}`, ...(after !== undefined ? { retryAfterMs: after } : {}) });
      });
    });
    request.on('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, retryable: true, reason: signal.aborted ? 'stopped at the end of input' : (err.code ?? err.message) });
    });
    request.end(rendered.body);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export interface WebhookCounts {
  sent: number;
  failed: number;
  dropped: number;
}

/**
 * One webhook's queue. Each webhook has its own, so a webhook that hangs
 * holds up only its own notifications, never another's, and never the
 * record stream. A failing webhook is logged once; later failures are
 * counted and reported at the end.
 */
export class WebhookSender implements WebhookCounts {
  sent = 0;
  failed = 0;
  dropped = 0;
  private queue: Notification[] = [];
  private active = 0;
  private failureLogged = false;
  private dropLogged = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly webhook: Webhook,
    readonly label: string,
    private readonly policy: DeliveryPolicy,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {}

  get inFlight(): number {
    return this.active + this.queue.length;
  }

  enqueue(n: Notification): void {
    if (this.signal.aborted) return;
    if (this.queue.length >= MAX_QUEUED_PER_WEBHOOK) {
      this.queue.shift();
      this.dropped++;
      if (!this.dropLogged) {
        this.dropLogged = true;
        this.log.warn(`${this.label}: more than ${MAX_QUEUED_PER_WEBHOOK} notifications waiting; dropping the oldest`);
      }
    }
    this.queue.push(n);
    this.pump();
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.active < this.policy.concurrency && this.queue.length > 0) {
      const n = this.queue.shift()!;
      this.active++;
      void this.deliver(n).finally(() => {
        this.active--;
        this.pump();
        if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
    }
  }

  private async deliver(n: Notification): Promise<void> {
    const rendered = renderNotification(this.webhook.kind, this.webhook.url, n);
    let failure: Extract<PostResult, { ok: false }> = { ok: false, retryable: false, reason: 'stopped at the end of input before it was sent' };
    for (let attempt = 0; attempt <= this.policy.retries && !this.signal.aborted; attempt++) {
      if (attempt > 0) {
        const wait = failure.retryAfterMs ?? this.policy.backoffMs * 2 ** (attempt - 1);
        if (wait > MAX_RETRY_AFTER_MS) break;
        await sleep(wait, this.signal);
        if (this.signal.aborted) break;
      }
      const result = await postOnce(rendered, this.policy.timeoutMs, this.signal);
      if (result.ok) {
        this.sent++;
        this.log.debug(`${this.label}: sent ${n.run_id ?? ''} (HTTP ${result.status})`);
        return;
      }
      failure = result;
      if (!failure.retryable) break;
    }
    this.failed++;
    const what = failure.reason;
    if (!this.failureLogged) {
      this.failureLogged = true;
      this.log.warn(`${this.label}: notification for ${n.run_id ?? n.prompt ?? 'a prompt'} failed: ${what}; further failures of this webhook are counted, not logged`);
    } else {
      this.log.debug(`${this.label}: notification for ${n.run_id ?? 'a prompt'} failed: ${what}`);
    }
  }
}
