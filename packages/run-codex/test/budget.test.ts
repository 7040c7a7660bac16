import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRunStatus } from '@prompt-valet/core';
import { execTurn, messageTurn, stallTurn } from '@prompt-valet/testkit';
import { scratch } from './fixtures/scratch.js';

// The real codex against the fake model: every model response reports its
// usage (15 tokens unless the turn says otherwise), and codex writes a
// running total into its session file after each response (once the
// response's tool calls are done).

t.test('a cap of a few tokens stops the agent after the first response past it', async (t) => {
  const s = await scratch(t, {
    // The model never answers the second request: only the cap can end this run (no idle limit).
    turns: [execTurn('echo partial > work.txt'), stallTurn()],
    watcher: { runner_max_tokens: 10, runner_idle_timeout_seconds: 0, runner_kill_grace_seconds: 1 },
  });
  const started = Date.now();
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, stderr);
  const rec = records[0]!;
  t.ok(Date.now() - started < 60_000, 'stopped, not left waiting for the model');
  t.match(rec.error, { step: 'run-codex', code: 'budget_exceeded', retryable: false, incomplete: { reason: 'budget_exceeded' } });
  t.match(rec.error?.message, /used 15 tokens, 5 more than its cap of 10 \(watcher\.runner_max_tokens\), and was stopped/);
  t.equal(rec.agent?.usage?.total_tokens, 15, 'the usage of the one response is recorded');
  t.equal(rec.agent?.max_tokens, 10);
  t.equal(rec.agent?.tokens_over_budget, 5, 'the overshoot is recorded');
  t.ok(s.model.requests.length <= 2, 'no response after the one past the cap');
  t.equal(fs.readFileSync(path.join(s.checkout, 'work.txt'), 'utf8'), 'partial\n', 'the partial work is still in the checkout');
  const status = await readRunStatus(s.runRoot);
  t.equal(status?.usage?.total_tokens, 15, 'status.json has the usage');
});

t.test('front matter max_tokens lowers the cap; a run that passes it while finishing is still over budget', async (t) => {
  const s = await scratch(t, {
    prompt: '---\nmax_tokens: 100\n---\nSay something.\n',
    turns: [messageTurn('a long answer', { input_tokens: 400, output_tokens: 100, total_tokens: 500 })],
    watcher: { runner_max_tokens: 1000 },
  });
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, stderr);
  const rec = records[0]!;
  t.match(rec.error, { code: 'budget_exceeded', incomplete: { reason: 'budget_exceeded' } });
  // Stopped by the poll, or ended by codex first: a race that either way ends past the cap.
  t.match(rec.error?.message, /used 500 tokens, 400 more than its cap of 100 \(front matter max_tokens\), (and was stopped|in the response it finished with)/);
  t.equal(rec.agent?.tokens_over_budget, 400);
});

t.test('within the cap the run succeeds and records its usage and cap', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn('echo done > out.txt'), messageTurn('done')],
    watcher: { runner_max_tokens: 1000 },
  });
  const { code, records, stderr } = await s.start({ args: ['--json'] }).done;
  t.equal(code, 0, stderr);
  const rec = records[0]!;
  t.equal(rec.error, undefined);
  t.equal(rec.agent?.usage?.total_tokens, 30, 'two responses of 15 tokens');
  t.equal(rec.agent?.max_tokens, 1000);
  t.equal(rec.agent?.tokens_over_budget, undefined);
});

t.test('front matter may not raise the operator\'s cap', async (t) => {
  const s = await scratch(t, {
    prompt: '---\nmax_tokens: 5000\n---\nDo it.\n',
    turns: [messageTurn('never asked')],
    watcher: { runner_max_tokens: 1000 },
  });
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, stderr);
  t.match(records[0]!.error, { code: 'bad_front_matter', message: /max_tokens: got 5000, expected at most 1000 tokens/ });
  t.equal(s.model.requests.length, 0, 'the agent never ran');
});

t.test('an agent stopped for good is recorded: a resumed run re-emits the stop, the agent is not started again', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn('echo partial > work.txt'), stallTurn()],
    watcher: { runner_max_tokens: 10, runner_idle_timeout_seconds: 0, runner_kill_grace_seconds: 1 },
  });
  const first = (await s.start().done).records[0]!;
  t.match(first.error, { code: 'budget_exceeded', incomplete: { reason: 'budget_exceeded' } });
  const requests = s.model.requests.length;
  const again = await s.start().done;
  t.equal(again.code, 0, again.stderr);
  t.same(again.records[0]!.error, first.error, 'the same error');
  t.same(again.records[0]!.agent, first.agent, 'the same agent section');
  t.equal(s.model.requests.length, requests, 'codex was not started again');
  t.match(again.stderr, /stopped in an earlier try \(budget_exceeded\); not running it again/);
  t.equal((await readRunStatus(s.runRoot))?.agent_runs, 1);
});
