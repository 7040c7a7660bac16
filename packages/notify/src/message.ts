import * as path from 'node:path';
import type { PvRecord, WebhookKind } from '@prompt-valet/core';
import { expectErrno } from '@prompt-valet/core';

/**
 * What a notification says about one settled prompt. Built from a record,
 * which is input: every field is type-checked and bounded, and a field that
 * is missing or malformed is left out rather than guessed.
 */
export interface Notification {
  v: 1;
  event: 'prompt_settled';
  run_id?: string;
  /** `owner/repo` */
  repo?: string;
  branch?: string;
  /** the prompt's own name, e.g. `x.prompt.md` */
  prompt?: string;
  state: 'done' | 'error' | 'pending';
  /** done: publish outcome (pr_opened, no_changes, …); error/pending: the error code */
  outcome?: string;
  pr_url?: string;
  /** from the claim to the settle */
  duration_ms?: number;
  /** total tokens the agent used (agent.usage) */
  tokens?: number;
  /** why it failed or was put back */
  reason?: string;
}

const MAX_FIELD = 300;
const MAX_REASON = 1000;

function text(v: unknown, max = MAX_FIELD): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  // Control characters would break a one-line chat message or a header.
  const clean = v.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (clean === '') return undefined;
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

function object(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function httpUrl(v: unknown): string | undefined {
  const s = text(v, 2000);
  if (!s) return undefined;
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : undefined;
  } catch (err) {
    expectErrno(err, 'ERR_INVALID_URL');
    return undefined;
  }
}

function tokensOf(agent: Record<string, unknown> | undefined): number | undefined {
  const usage = object(agent?.usage);
  if (!usage) return undefined;
  const total = usage.total_tokens;
  if (typeof total === 'number' && Number.isFinite(total) && total >= 0) return total;
  const input = usage.input_tokens;
  const output = usage.output_tokens;
  if (typeof input === 'number' && typeof output === 'number' && Number.isFinite(input + output) && input + output >= 0) return input + output;
  return undefined;
}

function durationOf(claimedAt: unknown, settledAt: unknown): number | undefined {
  if (typeof claimedAt !== 'string' || typeof settledAt !== 'string') return undefined;
  const ms = Date.parse(settledAt) - Date.parse(claimedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** The notification for a settled record; undefined when the record has no valid settle section. */
export function notificationFromRecord(rec: PvRecord): Notification | undefined {
  const settle = object(rec.settle);
  const state = settle?.state;
  if (state !== 'done' && state !== 'error' && state !== 'pending') return undefined;
  const claim = object(rec.claim);
  const target = object(rec.target);
  const publish = object(rec.publish);
  const error = object(rec.error);
  const owner = text(target?.owner);
  const repo = text(target?.repo);
  const promptName = text(claim?.prompt_name) ?? (typeof settle?.path === 'string' ? text(path.basename(settle.path)) : undefined);

  const n: Notification = { v: 1, event: 'prompt_settled', state };
  const runId = text(rec.run_id, 100);
  if (runId) n.run_id = runId;
  if (owner && repo) n.repo = `${owner}/${repo}`;
  else if (repo) n.repo = repo;
  const branch = text(target?.branch);
  if (branch) n.branch = branch;
  if (promptName) n.prompt = promptName;
  const outcome = state === 'done' ? text(settle?.outcome) ?? text(publish?.outcome) : text(error?.code, 100);
  if (outcome) n.outcome = outcome;
  const prUrl = httpUrl(publish?.pr_url);
  if (prUrl) n.pr_url = prUrl;
  const duration = durationOf(claim?.claimed_at, settle?.settled_at);
  if (duration !== undefined) n.duration_ms = duration;
  const tokens = tokensOf(object(rec.agent));
  if (tokens !== undefined) n.tokens = tokens;
  if (state !== 'done') {
    const reason = text(error?.message, MAX_REASON);
    if (reason) n.reason = reason;
  }
  return n;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const STATE_WORD: Record<Notification['state'], string> = { done: 'done', error: 'failed', pending: 'will be retried' };

/** One line a person reads in a chat or a phone notification. */
export function headline(n: Notification): string {
  const where = [n.repo, n.branch].filter(Boolean).join(' ');
  return `${n.prompt ?? n.run_id ?? 'a prompt'}${where ? ` (${where})` : ''} ${STATE_WORD[n.state]}${n.outcome ? `: ${n.outcome}` : ''}`;
}

/** Lines under the headline: PR, duration, tokens, reason. */
export function detailLines(n: Notification): string[] {
  const facts = [n.duration_ms !== undefined ? formatDuration(n.duration_ms) : undefined, n.tokens !== undefined ? `${n.tokens} tokens` : undefined].filter(Boolean);
  return [n.pr_url, facts.length > 0 ? facts.join(', ') : undefined, n.reason].filter((l): l is string => Boolean(l));
}

export interface Rendered {
  /** ntfy's JSON publishing goes to the server root, not the topic URL */
  url: URL;
  body: string;
  contentType: string;
}

const STATE_EMOJI: Record<Notification['state'], string> = { done: '✅', error: '❌', pending: '⏳' };
const NTFY_TAG: Record<Notification['state'], string> = { done: 'white_check_mark', error: 'x', pending: 'hourglass' };
/** Discord rejects content over 2000 characters. */
const DISCORD_MAX = 2000;

/** Slack reads &, < and > as markup (links, mentions): escape them. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The body each kind of receiver accepts as it is, with no relay:
 * - json: the Notification itself;
 * - ntfy: JSON publishing (POST to the server root with `topic`), which
 *   carries UTF-8 titles that ntfy's header form cannot;
 * - slack: an incoming webhook's `text` (mrkdwn escaped);
 * - discord: `content`, with mentions turned off (a branch named
 *   `@everyone` must not ping a server).
 */
export function renderNotification(kind: WebhookKind, url: URL, n: Notification): Rendered {
  const json = 'application/json';
  switch (kind) {
    case 'json':
      return { url, body: JSON.stringify(n), contentType: json };
    case 'ntfy': {
      const parts = url.pathname.split('/');
      const topic = decodeURIComponent(parts.pop() || parts.pop() || '');
      const root = new URL(url.href);
      root.pathname = parts.join('/') || '/';
      const body: Record<string, unknown> = {
        topic,
        title: `${STATE_EMOJI[n.state]} ${headline(n)}`.slice(0, 250),
        message: detailLines(n).join('\n') || headline(n),
        tags: [NTFY_TAG[n.state]],
        priority: n.state === 'error' ? 4 : 3,
      };
      if (n.pr_url) body.click = n.pr_url;
      return { url: root, body: JSON.stringify(body), contentType: json };
    }
    case 'slack': {
      const lines = [`${STATE_EMOJI[n.state]} *${slackEscape(headline(n))}*`, ...detailLines(n).map((l) => (l === n.pr_url ? `<${l}>` : slackEscape(l)))];
      return { url, body: JSON.stringify({ text: lines.join('\n') }), contentType: json };
    }
    case 'discord': {
      const content = [`${STATE_EMOJI[n.state]} **${headline(n)}**`, ...detailLines(n).map((l) => (l === n.pr_url ? `<${l}>` : l))].join('\n');
      return {
        url,
        body: JSON.stringify({ content: content.length > DISCORD_MAX ? `${content.slice(0, DISCORD_MAX - 1)}…` : content, allowed_mentions: { parse: [] } }),
        contentType: json,
      };
    }
  }
}
