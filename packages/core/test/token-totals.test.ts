import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTokenTotals, totalTokens, type TokenCountCache } from '../src/token-totals.js';
import { updateRunStatus } from '../src/run-folder.js';

t.test('totalTokens: total_tokens, else input + output', async (t) => {
  t.equal(totalTokens(undefined), 0);
  t.equal(totalTokens({ input_tokens: 10, output_tokens: 5, total_tokens: 99 }), 99);
  t.equal(totalTokens({ input_tokens: 10, output_tokens: 5 }), 15);
});

t.test('a settled run is read once with a cache; a run still going is read each time; the cap truncates', async (t) => {
  const processed = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-tokens-'));
  t.teardown(() => fs.rmSync(processed, { recursive: true, force: true }));
  const now = new Date('2026-11-30T12:00:00Z');
  const settled = path.join(processed, '20261130-100000-000-aaaaaaaa');
  const going = path.join(processed, '20261130-110000-000-bbbbbbbb');
  await updateRunStatus(settled, { state: 'done', prompt_rel: 'r/main/x.prompt.md', usage: { total_tokens: 100 } });
  await updateRunStatus(going, { state: 'running', prompt_rel: 'r/main/y.prompt.md', usage: { total_tokens: 7 } });
  fs.mkdirSync(path.join(processed, 'not-a-run'));
  const cache: TokenCountCache = new Map();
  const first = await readTokenTotals(processed, { days: 1, now, cache });
  t.same(first, { days: [{ day: '2026-11-30', runs: 2, tokens: 107 }], truncated: false });
  t.same([...cache.keys()], ['20261130-100000-000-aaaaaaaa'], 'only the settled run is cached');
  // Changed on disk behind the cache: the settled run's count comes from the cache, the running one is read again.
  await updateRunStatus(settled, { usage: { total_tokens: 5000 } });
  await updateRunStatus(going, { usage: { total_tokens: 70 } });
  t.equal((await readTokenTotals(processed, { days: 1, now, cache })).days[0]!.tokens, 170);
  const capped = await readTokenTotals(processed, { days: 1, now, maxRuns: 1 });
  t.same(capped, { days: [{ day: '2026-11-30', runs: 1, tokens: 70 }], truncated: true }, 'the newest run counted, the answer says it is partial');
  t.equal((await readTokenTotals(processed, { days: 9999, now })).days.length, 90, 'at most 90 days');
});
