import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES } from '@prompt-valet/core';
import { execTurn, stallTurn } from '@prompt-valet/testkit';
import { processIsDead, scratch, waitFor } from './fixtures/scratch.js';

// codex starts each command in a session of its own, and a command that is
// still running when its call yields stays alive in the background: the
// case where killing only the agent's process group would leave an orphan.
const BACKGROUND_SLEEP = 'sleep 300 & echo $! > bg.pid; wait';

t.test('a stalled model hits the idle limit: the agent and everything it started are stopped', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn(BACKGROUND_SLEEP, { yieldTimeMs: 300 }), stallTurn()],
    watcher: { runner_idle_timeout_seconds: 3, runner_kill_grace_seconds: 1 },
  });
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, stderr);
  const rec = records[0]!;
  t.equal(rec.error?.code, 'agent_idle_timeout');
  t.same(rec.error?.incomplete, { reason: 'idle_timeout' }, 'a stop whose work pv-publish keeps');
  t.equal(rec.error?.step, 'run-codex');
  t.equal(rec.error?.retryable, false);
  t.equal(rec.agent?.idle_timed_out, true);
  t.equal(rec.agent?.timed_out, false);
  t.equal(s.model.requests.length, 2, 'the stall came after the command had started');
  const pid = Number(fs.readFileSync(path.join(s.checkout, 'bg.pid'), 'utf8'));
  t.ok(pid > 0, 'the agent started a background process');
  t.ok(processIsDead(pid), `the background process ${pid} does not survive the agent`);
});

t.test('the wall-clock limit from front matter stops a stalled agent', async (t) => {
  const s = await scratch(t, {
    prompt: '---\ntimeout: 2\n---\nDo it.\n',
    turns: [stallTurn()],
    watcher: { runner_idle_timeout_seconds: 0, runner_kill_grace_seconds: 1 },
  });
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, stderr);
  t.equal(records[0]!.error?.code, 'agent_timeout');
  t.same(records[0]!.error?.incomplete, { reason: 'timeout' });
  t.equal(records[0]!.error?.retryable, false);
  t.match(records[0]!.error?.message, /longer than 2s/);
  t.equal(records[0]!.agent?.timed_out, true);
});

t.test('an ABORT file in the run folder stops the run', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn(BACKGROUND_SLEEP, { yieldTimeMs: 300 }), stallTurn()],
    watcher: { runner_kill_grace_seconds: 1 },
  });
  const run = s.start();
  await s.model.waitForRequests(2);
  const pid = Number(fs.readFileSync(path.join(s.checkout, 'bg.pid'), 'utf8'));
  fs.writeFileSync(path.join(s.runRoot, RUN_FILES.abort), 'operator said stop\n');
  const { code, records, stderr } = await run.done;
  t.equal(code, 0, stderr);
  t.equal(records[0]!.error?.code, 'aborted');
  t.same(records[0]!.error?.incomplete, { reason: 'aborted' });
  t.equal(records[0]!.error?.retryable, false);
  t.equal(records[0]!.agent?.aborted, true);
  t.equal(records[0]!.agent?.abort_reason, 'abort_file');
  t.ok(processIsDead(pid), 'the background process is gone');
});

t.test('SIGTERM to pv-run-codex: the agent stops, the record says retry, exit 0', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn(BACKGROUND_SLEEP, { yieldTimeMs: 300 }), stallTurn()],
    watcher: { runner_kill_grace_seconds: 1 },
  });
  const second = { ...s.record, run_id: 'second' };
  const run = s.start({ input: `${JSON.stringify(s.record)}\n${JSON.stringify(second)}\n` });
  await s.model.waitForRequests(2);
  const pid = Number(fs.readFileSync(path.join(s.checkout, 'bg.pid'), 'utf8'));
  run.child.kill('SIGTERM');
  const { code, records, stderr } = await run.done;
  t.equal(code, 0, stderr);
  t.equal(records.length, 2, 'both records are flushed');
  t.equal(records[0]!.error?.code, 'aborted_shutdown');
  t.equal(records[0]!.error?.incomplete, undefined, 'a shutdown is no stop whose work is kept: the run resumes');
  t.equal(records[0]!.error?.retryable, true, 'pv-settle puts the prompt back to pending');
  t.equal(records[0]!.agent?.abort_reason, 'shutdown');
  t.equal(records[1]!.error?.code, 'aborted_shutdown', 'a record still coming is not started');
  t.notOk(records[1]!.agent);
  t.equal(s.model.requests.length, 2, 'no agent ran for the second record');
  t.ok(processIsDead(pid), 'the background process is gone');
});

t.test('the log grows while the agent runs', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn('echo started-marker; while [ ! -f go ]; do sleep 0.1; done; echo finished-marker', { yieldTimeMs: 60_000 })],
  });
  const logFile = path.join(s.runRoot, RUN_FILES.log);
  const run = s.start();
  let exited = false;
  void run.done.then(() => (exited = true));
  await waitFor('the command to show in the log', () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('while [ ! -f go ]'));
  t.notOk(exited, 'the log has the command while the agent is still running');
  t.notMatch(fs.readFileSync(logFile, 'utf8'), 'succeeded', 'the command has not finished yet');
  fs.writeFileSync(path.join(s.checkout, 'go'), '');
  const { code, records } = await run.done;
  t.equal(code, 0);
  t.notOk(records[0]!.error);
  t.match(fs.readFileSync(logFile, 'utf8'), /finished-marker/, 'later output is appended');
});
