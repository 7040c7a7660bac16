import * as path from 'node:path';
import { listRunIds } from './queue-view.js';
import { expectErrno } from './files.js';
import { readRunStatusOrNone, type RunStatus } from './run-folder.js';
import type { TokenUsage } from './records.js';
import { isRunId } from './runid.js';

/**
 * Tokens per run and per day, from the runs' own status.json under
 * processed/ (pv-status, pv-web). Bounded work: a run's day is the date in
 * its id (run ids start with their UTC creation time), so only the runs of
 * the days asked for are read, at most MAX_RUNS_READ of them, and a caller
 * that asks again (pv-web) passes a cache that keeps the count of every
 * settled run, whose usage no longer changes: each request then reads only
 * the runs still going.
 */

/** The most days one request may cover. */
export const MAX_TOKEN_DAYS = 90;
/** The most status files one count reads; past it the answer says `truncated`. */
export const MAX_RUNS_READ = 5000;

/** The total a usage counts: total_tokens, else input + output (codex's turn.completed has no total). */
export function totalTokens(usage: TokenUsage | undefined): number {
  if (!usage) return 0;
  if (usage.total_tokens !== undefined) return usage.total_tokens;
  return (usage.input_tokens ?? 0) + (usage.output_tokens ?? 0);
}

export interface DayTokens {
  /** YYYY-MM-DD (UTC) */
  day: string;
  /** runs started that day */
  runs: number;
  /** tokens those runs used */
  tokens: number;
}

export interface TokenTotals {
  /** newest day first, every day of the window (a day without runs has zeros) */
  days: DayTokens[];
  /** true when more runs fell in the window than MAX_RUNS_READ: the oldest were not counted */
  truncated: boolean;
}

/** Settled runs' token counts by run id, kept between calls by a long-lived reader (pv-web). */
export type TokenCountCache = Map<string, number>;

const SETTLED = new Set(['done', 'error', 'retry']);

export interface TokenTotalsOptions {
  days?: number;
  now?: Date;
  cache?: TokenCountCache;
  maxRuns?: number;
}

/** A run's status, or undefined when it has none yet, is torn, or may not be read: a count skips it. */
async function statusToCount(runRoot: string): Promise<RunStatus | undefined> {
  try {
    return await readRunStatusOrNone(runRoot);
  } catch (err) {
    expectErrno(err, 'EACCES', 'EPERM', 'ENOTDIR');
    return undefined;
  }
}

function dayOfRunId(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}`;
}

export async function readTokenTotals(processed: string, opts: TokenTotalsOptions = {}): Promise<TokenTotals> {
  const dayCount = Math.min(MAX_TOKEN_DAYS, Math.max(1, Math.floor(opts.days ?? 7)));
  const now = opts.now ?? new Date();
  const days: DayTokens[] = [];
  for (let i = 0; i < dayCount; i++) {
    const d = new Date(now.getTime() - i * 86_400_000).toISOString().slice(0, 10);
    days.push({ day: d, runs: 0, tokens: 0 });
  }
  const byDay = new Map(days.map((d) => [d.day, d]));
  const oldest = days[days.length - 1]!.day.replaceAll('-', '');
  // Newest first: the window is a prefix of the list, and the cap drops the oldest.
  const inWindow = (await listRunIds(processed)).filter((id) => isRunId(id) && id.slice(0, 8) >= oldest);
  const maxRuns = opts.maxRuns ?? MAX_RUNS_READ;
  const counted = inWindow.slice(0, maxRuns);
  const cache = opts.cache;
  if (cache) {
    // Only the window's runs stay cached: the cache never outgrows what one answer reads.
    const keep = new Set(counted);
    for (const id of cache.keys()) if (!keep.has(id)) cache.delete(id);
  }
  for (const id of counted) {
    const day = byDay.get(dayOfRunId(id));
    if (!day) continue;
    let tokens = cache?.get(id);
    if (tokens === undefined) {
      const status = await statusToCount(path.join(processed, id));
      tokens = totalTokens(status?.usage);
      if (cache && status && SETTLED.has(status.state)) cache.set(id, tokens);
    }
    day.runs++;
    day.tokens += tokens;
  }
  return { days, truncated: inWindow.length > counted.length };
}
