import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES } from '@prompt-valet/core';
import { errorTurn } from '@prompt-valet/testkit';
import { scratch, startBin } from './fixtures/scratch.js';

t.test('the model API refuses the request: error record with codex\'s message, not retryable', async (t) => {
  const s = await scratch(t, {
    turns: [errorTurn(400, JSON.stringify({ error: { message: 'model fm-nonsense does not exist', type: 'invalid_request_error' } }))],
  });
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, 'the tool ran; the record carries the failure');
  const rec = records[0]!;
  t.equal(rec.error?.code, 'agent_failed');
  t.equal(rec.error?.step, 'run-codex');
  t.equal(rec.error?.retryable, false);
  t.match(rec.error?.message, /exited with status 1/);
  t.match(rec.error?.message, 'model fm-nonsense does not exist');
  t.equal(rec.agent?.exit_code, 1);
  t.match(stderr, 'model fm-nonsense does not exist');
});

t.test('a rate limit reported by codex is retryable', async (t) => {
  const s = await scratch(t, {
    turns: [errorTurn(429, JSON.stringify({ error: { message: 'Rate limit reached', type: 'rate_limit_exceeded' } }))],
  });
  const { code, records } = await s.start({ args: ['--json'] }).done;
  t.equal(code, 0);
  t.equal(records[0]!.error?.code, 'agent_failed');
  t.match(records[0]!.error?.message, /429/);
  t.equal(records[0]!.error?.retryable, true);
});

t.test('runner not installed: clear error record for each prompt, exit 69', async (t) => {
  const s = await scratch(t, { turns: [], watcher: { runner_cmd: 'codex-not-installed-anywhere' } });
  const failed = { v: 1, run_id: 'old', error: { step: 'clone', code: 'clone_failed', message: 'x', retryable: true } };
  const { code, records, stderr } = await s.start({ input: `${JSON.stringify(s.record)}\n${JSON.stringify(failed)}\n` }).done;
  t.equal(code, 69);
  t.equal(records.length, 2);
  t.equal(records[0]!.error?.code, 'runner_missing');
  t.equal(records[0]!.error?.retryable, false);
  t.match(records[0]!.error?.message, '"codex-not-installed-anywhere" is not installed or not on PATH');
  t.same(records[1], failed, 'a record that already failed passes through untouched');
  t.match(stderr, 'codex-not-installed-anywhere');
  t.equal(s.model.requests.length, 0);
  t.notOk(fs.existsSync(path.join(s.runRoot, RUN_FILES.log)), 'nothing was started');
});

t.test('runner missing with no input still exits 69 (an installation check)', async (t) => {
  const s = await scratch(t, { turns: [], watcher: { runner_cmd: '/nonexistent/bin/codex' } });
  const { code, records } = await s.start({ input: '' }).done;
  t.equal(code, 69);
  t.same(records, []);
});

t.test('a record without a checkout fails alone; the stream goes on', async (t) => {
  const s = await scratch(t, { turns: [], watcher: { runner_cmd: 'true' } });
  // no target: nothing to derive the checkout from
  const noCheckout = { v: 1, run_id: s.runId, claim: { run_root: s.runRoot } };
  const { code, records } = await s.start({ input: `${JSON.stringify(noCheckout)}\nnot json\n` }).done;
  t.equal(code, 0);
  t.equal(records[0]!.error?.code, 'missing_target');
  t.match(records[0]!.error?.message, 'target');
  t.equal(records[1]!.error?.code, 'malformed_record');
});

t.test('--help documents the exit status and the error codes', async (t) => {
  const { code, stdout } = await startBin(t, ['--help'], process.env, '').done;
  t.equal(code, 0);
  t.match(stdout, /69 .*missing/);
  t.match(stdout, 'exits 69');
  t.match(stdout, 'aborted_shutdown');
  t.match(stdout, 'PV_RUN_ID');
});

t.test('a forged record\'s front matter widens nothing: bad_front_matter, the agent never starts', async (t) => {
  const s = await scratch(t, { turns: [], watcher: { runner_sandbox: 'read-only', runner_timeout_seconds: 60 } });
  const forged = [
    [{ sandbox: 'danger-full-access' }, /sandbox: .*watcher.runner_sandbox is read-only/],
    [{ model: '--dangerously-bypass-approvals-and-sandbox' }, /model: .*expected a model name/],
    [{ timeout: 999999999 }, /timeout: .*at most 60 seconds/],
    [{ extra_args: ['--yolo'] }, /"extra_args" is not a known key/],
  ] as const;
  const input = forged.map(([fm]) => JSON.stringify({ ...s.record, target: { ...s.record.target!, front_matter: fm } })).join('\n') + '\n';
  const { code, records, stderr } = await s.start({ input }).done;
  t.equal(code, 0, stderr);
  t.equal(records.length, forged.length);
  forged.forEach(([fm, re], i) => {
    t.match(records[i]!.error, { step: 'run-codex', code: 'bad_front_matter', retryable: false, message: re }, JSON.stringify(fm));
    t.notOk(records[i]!.agent, 'no agent section: nothing ran');
  });
  t.equal(s.model.requests.length, 0, 'the model was never called');
});

t.test('bwrap failing to set the jail up is jail_failed, retryable: the agent never ran', async (t) => {
  const s = await scratch(t, { turns: [] });
  // A bwrap that fails as it does when a folder it must cover has gone (seen after a watcher crash).
  const bin = fs.mkdtempSync(path.join(s.root, 'fake-bwrap-'));
  fs.writeFileSync(path.join(bin, 'bwrap'), '#!/bin/sh\necho "bwrap: Failed to mount tmpfs: No such file or directory" >&2\nexit 1\n', { mode: 0o755 });
  const { code, records } = await s.start({ env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } }).done;
  t.equal(code, 0);
  const rec = records[0]!;
  t.equal(rec.error?.code, 'jail_failed');
  t.equal(rec.error?.retryable, true, 'retried: not the prompt\'s fault');
  t.match(rec.error?.message, /the agent jail could not be set up \(bwrap: Failed to mount tmpfs/);
});
