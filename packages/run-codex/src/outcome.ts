/**
 * Reading what the agent said about how it went: its error lines, whether a
 * failure is worth retrying, and the tokens it used.
 */
import type { TokenUsage } from '@prompt-valet/core';
import { expectSyntaxError } from '@prompt-valet/core';

/** The messages codex reported as errors: `ERROR: …` lines, or error events with --json. */
export function agentErrors(output: string): string[] {
  const found: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const m = /^ERROR:\s*(.+)$/.exec(line);
    if (m) {
      found.push(m[1]!);
      continue;
    }
    if (!line.startsWith('{')) continue;
    const event = parseJsonObject(line);
    if (!event) continue;
    if (event.type === 'error' && typeof event.message === 'string') found.push(event.message);
    const err = event.error as { message?: unknown } | undefined;
    if (event.type === 'turn.failed' && typeof err?.message === 'string') found.push(err.message);
  }
  // codex prints the same error more than once (as it happens and at the end).
  return [...new Set(found)];
}

/**
 * A failure the same prompt may get past later unchanged: the model API was
 * unreachable, overloaded or rate-limited. Only codex's own error lines are
 * read, never the output of the commands the agent ran (a test log that says
 * "500" is not a network problem).
 */
const TRANSIENT = [
  /\b429\b/,
  /\b5\d\d\b/,
  /too many requests/i,
  /rate.?limit/i,
  /high demand/i,
  /overloaded/i,
  /service unavailable/i,
  /temporar(y|ily)/i,
  /stream disconnected/i,
  /network error/i,
  /connection (refused|reset|closed)/i,
  /\b(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ENOTFOUND)\b/,
  /dns error/i,
];

export function isTransientFailure(errors: string[]): boolean {
  return errors.some((e) => TRANSIENT.some((re) => re.test(e)));
}

export type { TokenUsage };

/** Sums the `usage` of every `turn.completed` event of `codex exec --json`. */
export class UsageCounter {
  private totals: TokenUsage = {};
  private seen = false;

  addEventLine(line: string): void {
    const event = parseJsonObject(line.trim());
    if (!event || event.type !== 'turn.completed') return;
    const usage = event.usage;
    if (typeof usage !== 'object' || usage === null) return;
    for (const [k, v] of Object.entries(usage as Record<string, unknown>)) {
      if (typeof v === 'number' && Number.isFinite(v)) {
        this.totals[k] = (this.totals[k] ?? 0) + v;
        this.seen = true;
      }
    }
  }

  result(): TokenUsage | undefined {
    if (!this.seen) return undefined;
    const out = { ...this.totals };
    if (out.total_tokens === undefined && out.input_tokens !== undefined && out.output_tokens !== undefined) {
      out.total_tokens = out.input_tokens + out.output_tokens;
    }
    return out;
  }
}

/** Without --json codex ends with "tokens used" and a number on the next line. */
export function usageFromHumanOutput(output: string): TokenUsage | undefined {
  const matches = [...output.matchAll(/tokens used\s*:?\s*\n?\s*([\d,]+)/gi)];
  const last = matches[matches.length - 1];
  if (!last) return undefined;
  const total = Number(last[1]!.replace(/,/g, ''));
  return Number.isFinite(total) ? { total_tokens: total } : undefined;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch (err) {
    expectSyntaxError(err);
    return undefined;
  }
}
