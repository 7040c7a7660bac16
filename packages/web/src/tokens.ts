import { MAX_TOKEN_DAYS, readTokenTotals, type TokenCountCache, type TokenTotals, type ValetConfig } from '@prompt-valet/core';
import { HttpError } from './http-error.js';

/**
 * GET /api/tokens?days=N: tokens used per day (core readTokenTotals). pv-web
 * lives long and the dashboard asks every few seconds, so the counts of
 * settled runs are cached (they no longer change) and each request reads
 * only the status of the runs still going; the cache holds only the window's
 * runs, at most core's MAX_RUNS_READ.
 */
export function tokenTotalsReader(config: ValetConfig): (daysParam: string | undefined) => Promise<TokenTotals> {
  const cache: TokenCountCache = new Map();
  return async (daysParam) => {
    const days = daysParam === undefined ? 7 : Number(daysParam);
    if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS) {
      throw new HttpError(400, 'bad_days', `days must be a whole number from 1 to ${MAX_TOKEN_DAYS}`);
    }
    return readTokenTotals(config.processed, { days, cache });
  };
}
