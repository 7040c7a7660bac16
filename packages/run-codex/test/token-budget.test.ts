import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalUsage, SessionUsageFollower } from '../src/token-budget.js';

/** A token_count event as codex 0.171 writes it to its session file. */
const tokenCount = (total: number) => JSON.stringify({
  timestamp: '2026-11-30T06:47:36.349Z', type: 'event_msg',
  payload: { type: 'token_count', info: { total_token_usage: { input_tokens: total - 5, output_tokens: 5, total_tokens: total }, last_token_usage: {} }, rate_limits: null },
}) + '\n';

function codexHome(t: { teardown(fn: () => void): void }): { home: string; day: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-token-budget-'));
  t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
  const day = path.join(home, 'sessions', '2026', '11', '30');
  fs.mkdirSync(day, { recursive: true });
  return { home, day };
}

t.test('the running total of this run: new files from 0, a resumed session from where it stood', async (t) => {
  const { home, day } = codexHome(t);
  const resumed = path.join(day, 'rollout-old.jsonl');
  fs.writeFileSync(resumed, '{"type":"session_meta"}\n' + tokenCount(1000));
  const follower = new SessionUsageFollower(home);
  follower.start();
  t.equal(follower.poll(), undefined, 'nothing used yet');
  fs.appendFileSync(resumed, tokenCount(1015));
  const fresh = path.join(day, 'rollout-new.jsonl');
  fs.writeFileSync(fresh, tokenCount(15));
  t.equal(follower.poll()?.total_tokens, 30, '15 more in the resumed session, 15 in the new one');
  // A line arriving in pieces counts once it is whole; a repeated total is not counted twice.
  const line = tokenCount(45);
  fs.appendFileSync(fresh, line.slice(0, 40));
  t.equal(follower.poll()?.total_tokens, 30);
  fs.appendFileSync(fresh, line.slice(40) + tokenCount(45) + 'not json\n');
  t.equal(follower.poll()?.total_tokens, 60);
  t.match(follower.usage(), { input_tokens: 55, output_tokens: 5 }, 'every kind is counted, each from where it stood');
});

t.test('what the agent may plant in its CODEX_HOME: no symlink followed, no FIFO waited on, the walk bounded', async (t) => {
  const { home, day } = codexHome(t);
  const outside = path.join(home, 'outside.jsonl');
  fs.writeFileSync(outside, tokenCount(999999));
  fs.symlinkSync(outside, path.join(day, 'rollout-link.jsonl'));
  fs.symlinkSync(path.join(home, 'elsewhere'), path.join(home, 'sessions', '2026', '12'));
  execFileSync('mkfifo', [path.join(day, 'rollout-fifo.jsonl')]);
  for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(day, `rollout-${String(i).padStart(4, '0')}.jsonl`), '');
  const follower = new SessionUsageFollower(home);
  follower.start();
  const started = Date.now();
  for (let i = 0; i < 10; i++) follower.poll();
  t.ok(Date.now() - started < 2000, `ten polls over 2000 planted files took ${Date.now() - started} ms`);
  t.equal(follower.poll(), undefined, 'the linked total and the FIFO count for nothing');
});

t.test('finalUsage: codex\'s own figure, unless the session shows more', async (t) => {
  t.same(finalUsage({ total_tokens: 30 }, undefined), { total_tokens: 30 });
  t.same(finalUsage(undefined, { total_tokens: 15 }), { total_tokens: 15 });
  t.same(finalUsage({ total_tokens: 30 }, { total_tokens: 15 }), { total_tokens: 30 });
  t.same(finalUsage({ input_tokens: 10, output_tokens: 5 }, { total_tokens: 40 }), { total_tokens: 40 });
});
