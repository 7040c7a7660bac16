import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type RunStatus } from '@prompt-valet/core';
import { execTurn, messageTurn } from '@prompt-valet/testkit';
import { readJson, scratch } from './fixtures/scratch.js';

t.test('the agent edits the checkout; last message, env and status are where a user looks', async (t) => {
  const s = await scratch(t, {
    prompt: '---\ntitle: Add a file\nmodel: fm-model\n---\nPlease add hello.txt.\n',
    watcher: { allowed_models: ['fm-model'] },
    turns: [
      execTurn('echo hello > hello.txt; env > agent-env.txt'),
      messageTurn('I added hello.txt.', { input_tokens: 7, output_tokens: 3, total_tokens: 10 }),
    ],
  });
  const { code, records, stderr } = await s.start().done;
  t.equal(code, 0, stderr);
  t.equal(records.length, 1);
  const rec = records[0]!;
  t.notOk(rec.error, JSON.stringify(rec.error));
  t.equal(fs.readFileSync(path.join(s.checkout, 'hello.txt'), 'utf8'), 'hello\n', 'the edit is in the checkout');

  const agent = rec.agent!;
  t.equal(agent.exit_code, 0);
  t.equal(agent.timed_out, false);
  t.equal(agent.aborted, false);
  t.equal(agent.model, 'fm-model', 'front matter picks a model from watcher.allowed_models');
  t.equal(agent.last_message, path.join(s.runRoot, RUN_FILES.lastMessage));
  t.equal(fs.readFileSync(agent.last_message!, 'utf8').trim(), 'I added hello.txt.');
  t.equal(agent.agent_runs_file, `docs/AGENT_RUNS/codex-run-${s.runId}.md`);
  t.equal(fs.readFileSync(path.join(s.checkout, 'docs/AGENT_RUNS', `codex-run-${s.runId}.md`), 'utf8').trim(), 'I added hello.txt.');
  t.same(rec.claim, s.record.claim, 'fields of other steps pass through untouched');
  t.same(rec.checkout, s.record.checkout);

  const env = fs.readFileSync(path.join(s.checkout, 'agent-env.txt'), 'utf8');
  t.match(env, new RegExp(`^PV_RUN_ID=${s.runId}$`, 'm'));
  t.notMatch(env, /^PV_RUN_ROOT=/m, 'inside the jail the run folder is hidden, so it is not named');
  t.match(env, /^PV_PROMPT_FILE=\/run\/pv\/prompt\.md$/m, 'the prompt, read-only at a fixed path inside the jail');
  t.match(env, /^HOME=\/run\/pv\/home$/m, 'a private HOME');
  t.match(env, /^CODEX_HOME=\/run\/pv\/codex-home$/m, 'a CODEX_HOME of its own');
  t.notMatch(env, /GH_TOKEN|GITHUB_TOKEN|ghp_must_not_leak/, 'the agent never holds the publishing token');

  const first = JSON.stringify(s.model.requests[0]!.body);
  t.match(first, 'Please add hello.txt.', 'the prompt body reached the model');
  t.notMatch(first, 'title: Add a file', 'the front matter did not');
  t.equal((s.model.requests[0]!.body as { model?: string }).model, 'fm-model');

  const log = fs.readFileSync(path.join(s.runRoot, RUN_FILES.log), 'utf8');
  t.match(log, 'echo hello > hello.txt', 'the log holds what the agent did');
  const status = readJson<RunStatus>(path.join(s.runRoot, RUN_FILES.status));
  t.equal(status.state, 'running', 'the final state is left to pv-settle');
  t.ok(status.history.some((h) => h.state === 'running' && h.step === 'run-codex'));
  t.type(status.durations_ms?.['run-codex'], 'number');
  t.same(status.usage, { total_tokens: 10 + 15 }, 'usage from codex\'s "tokens used" line');
});

t.test('--json keeps the event stream and records token usage', async (t) => {
  const s = await scratch(t, {
    turns: [
      execTurn('true'),
      messageTurn('done', { input_tokens: 100, output_tokens: 20, total_tokens: 120 }),
    ],
    watcher: { agent_runs_dir: '' },
  });
  const { code, records, stderr } = await s.start({ args: ['--json'] }).done;
  t.equal(code, 0, stderr);
  const agent = records[0]!.agent!;
  t.notOk(records[0]!.error);
  t.equal(agent.events, path.join(s.runRoot, RUN_FILES.events));
  const events = fs.readFileSync(agent.events as string, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
  t.ok(events.some((e) => e.type === 'turn.completed'), 'events.jsonl holds codex events');
  t.equal(agent.agent_runs_file, undefined, 'agent_runs_dir "" disables the copy in the checkout');
  t.notOk(fs.existsSync(path.join(s.checkout, 'docs')));
  const status = readJson<RunStatus>(path.join(s.runRoot, RUN_FILES.status));
  t.equal(status.usage?.input_tokens, 110, 'input tokens of both model calls');
  t.equal(status.usage?.output_tokens, 25);
  t.same(agent.usage, status.usage);
});
