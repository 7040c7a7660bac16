import { expectErrno } from './files.js';
/**
 * notify.webhooks entries. An entry is a URL, optionally prefixed by the
 * kind of service that receives it (`slack:https://…`); without a prefix
 * the kind is told from the host (hooks.slack.com, discord.com webhooks,
 * ntfy.sh), else plain JSON. A self-hosted ntfy needs the `ntfy:` prefix:
 * nothing in its URL says what it is.
 */
export const WEBHOOK_KINDS = ['json', 'ntfy', 'slack', 'discord'] as const;
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

export interface Webhook {
  kind: WebhookKind;
  url: URL;
  /** the URL without its secrets, for logs */
  shown: string;
}

export type WebhookParse = { ok: true; webhook: Webhook } | { ok: false; reason: string };

const PREFIX = new RegExp(`^(${WEBHOOK_KINDS.join('|')}):(?=https?://)`, 'i');

function kindFromHost(url: URL): WebhookKind {
  const host = url.hostname.toLowerCase();
  if (host === 'hooks.slack.com') return 'slack';
  if ((host === 'discord.com' || host === 'discordapp.com' || host.endsWith('.discord.com')) && url.pathname.startsWith('/api/webhooks/')) return 'discord';
  if (host === 'ntfy.sh') return 'ntfy';
  return 'json';
}

/**
 * The URL as logs may show it: no userinfo, no query, no fragment. Slack's
 * and Discord's URLs carry their secret in the path, so only the host is
 * shown for them.
 */
export function redactWebhookUrl(url: URL, kind: WebhookKind): string {
  const hidden = kind === 'slack' || kind === 'discord';
  const user = url.username || url.password ? '***@' : '';
  const pathPart = hidden ? (url.pathname === '/' ? '/' : '/…') : url.pathname;
  return `${url.protocol}//${user}${url.host}${pathPart}${url.search ? '?…' : ''}`;
}

export function parseWebhook(entry: string): WebhookParse {
  const trimmed = entry.trim();
  const m = PREFIX.exec(trimmed);
  const explicit = m ? (m[1]!.toLowerCase() as WebhookKind) : undefined;
  const text = m ? trimmed.slice(m[0].length) : trimmed;
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    expectErrno(err, 'ERR_INVALID_URL');
    return { ok: false, reason: `not a URL (expected http:// or https://, optionally prefixed by ${WEBHOOK_KINDS.map((k) => `${k}:`).join(', ')})` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `the scheme is ${url.protocol.slice(0, -1)}, not http or https` };
  }
  const kind = explicit ?? kindFromHost(url);
  if (kind === 'ntfy' && url.pathname.split('/').filter(Boolean).length === 0) {
    return { ok: false, reason: `an ntfy webhook names its topic: ${redactWebhookUrl(url, kind)}<topic>` };
  }
  return { ok: true, webhook: { kind, url, shown: redactWebhookUrl(url, kind) } };
}
