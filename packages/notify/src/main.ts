import * as readline from 'node:readline';
import { defineTool, EXIT_STATUS_HELP, parseRecordLine, parseWebhook, ConfigError, type Logger, type NotifyConfig } from '@prompt-valet/core';
import { WebhookSender, type DeliveryPolicy } from './deliver.js';
import { notificationFromRecord } from './message.js';

interface NotifyArgs {
  'drain-seconds'?: number;
}

const EPILOGUE = `
The last step of the pipeline: … | pv-settle | pv-notify.

Input: records from pv-settle. Each input line is written to stdout at
once, byte for byte (a record is never changed or held back); then, for a
record with a settle section, a short message goes to every URL in
notify.webhooks: repo, branch, prompt, state (done | error | pending),
outcome, PR URL, duration, tokens and reason. Lines without a settle
section (or not records at all) are only passed on.

Webhook kinds, each in the shape the service accepts without a relay:
  json     the message as a JSON object (any URL not recognised below)
  ntfy     ntfy's JSON publishing; prefix the topic URL with "ntfy:"
           (ntfy.sh URLs are recognised)
  slack    an incoming webhook (hooks.slack.com, or prefix "slack:")
  discord  a channel webhook (discord.com/api/webhooks/…, or "discord:")

Sending is concurrent and bounded per webhook (notify.concurrency), each try
limited to notify.timeout_seconds, retried notify.retries times (network
errors, 408, 429, 5xx; waiting retry_backoff_seconds × 2^n or Retry-After).
A webhook that hangs or fails holds up neither the records nor the other
webhooks. A failing webhook is logged once per run (URLs without query,
userinfo or, for Slack and Discord, the secret path). At the end of input
pv-notify waits up to notify.drain_seconds for what is in flight, then
stops it and exits.

Output: the input, unchanged.

${EXIT_STATUS_HELP}

Example:
  pv-claim | pv-resolve | pv-clone | pv-run-codex | pv-publish | pv-settle | pv-notify`;

function senderFor(entry: string, index: number, policy: DeliveryPolicy, log: Logger, signal: AbortSignal): WebhookSender {
  const parsed = parseWebhook(entry);
  // loadConfig has checked every entry already; this guards a config built in code.
  if (!parsed.ok) throw new ConfigError(`notify.webhooks[${index}]: ${parsed.reason}`);
  const { webhook } = parsed;
  return new WebhookSender(webhook, `webhook ${index + 1} (${webhook.kind}, ${webhook.shown})`, policy, log, signal);
}

function policyOf(notify: NotifyConfig): DeliveryPolicy {
  return {
    timeoutMs: notify.timeout_seconds * 1000,
    retries: notify.retries,
    backoffMs: notify.retry_backoff_seconds * 1000,
    concurrency: notify.concurrency,
  };
}

async function writeLine(out: NodeJS.WritableStream, line: string): Promise<void> {
  if (!out.write(line + '\n')) await new Promise<void>((resolve) => out.once('drain', resolve));
}

export const main = defineTool<NotifyArgs>({
  name: 'pv-notify',
  summary: 'Pass settled records on unchanged and post a short message about each to the configured webhooks.',
  usage: 'pv-notify [--config FILE] [--drain-seconds N] < records > records',
  options: (y) => y.option('drain-seconds', { type: 'number', describe: 'override notify.drain_seconds' }),
  epilogue: EPILOGUE,
  async run(ctx) {
    const { config } = ctx.config();
    const stop = new AbortController();
    const policy = policyOf(config.notify);
    const senders = config.notify.webhooks.map((entry, i) => senderFor(entry, i, policy, ctx.log, stop.signal));

    const lines = readline.createInterface({ input: ctx.io.stdin, crlfDelay: Infinity, terminal: false });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      // Written first: a record is never delayed by its notification.
      await writeLine(ctx.io.stdout, line);
      if (senders.length === 0 || line.trim() === '') continue;
      const rec = parseRecordLine(line, lineNo);
      const n = notificationFromRecord(rec);
      if (!n) continue;
      for (const s of senders) s.enqueue(n);
    }

    const drainMs = (ctx.args['drain-seconds'] ?? config.notify.drain_seconds) * 1000;
    const inFlight = senders.reduce((sum, s) => sum + s.inFlight, 0);
    if (inFlight > 0) {
      ctx.log.debug(`end of input: waiting up to ${drainMs / 1000} s for ${inFlight} notification(s)`);
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        Promise.all(senders.map((s) => s.idle())).then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), drainMs);
        }),
      ]);
      clearTimeout(timer);
      if (!drained) {
        const left = senders.reduce((sum, s) => sum + s.inFlight, 0);
        ctx.log.warn(`${left} notification(s) still in flight after ${drainMs / 1000} s at the end of input: given up`);
        stop.abort();
        await Promise.all(senders.map((s) => s.idle()));
      }
    }
    for (const s of senders) {
      if (s.failed > 0 || s.dropped > 0) ctx.log.warn(`${s.label}: ${s.sent} sent, ${s.failed} failed${s.dropped ? `, ${s.dropped} dropped` : ''}`);
      else if (s.sent > 0) ctx.log.debug(`${s.label}: ${s.sent} sent`);
    }
    return 0;
  },
});
