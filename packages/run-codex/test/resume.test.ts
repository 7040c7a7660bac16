import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type RunStatus } from '@prompt-valet/core';
import { execTurn, messageTurn } from '@prompt-valet/testkit';
import { readJson, scratch } from './fixtures/scratch.js';

t.test('a run whose agent finished is not run again: the recorded agent section comes back', async (t) => {
  const s = await scratch(t, {
    turns: [execTurn('echo once >> runs.txt'), messageTurn('Done once.')],
  });
  const first = await s.start().done;
  t.equal(first.code, 0, first.stderr);
  t.notOk(first.records[0]!.error, JSON.stringify(first.records[0]!.error));
  const requestsAfterFirst = s.model.requests.length;
  t.ok(fs.existsSync(path.join(s.runRoot, 'steps', 'run-codex.json')), 'the completion is recorded in the run folder');

  const second = await s.start().done;
  t.equal(second.code, 0, second.stderr);
  const rec = second.records[0]!;
  t.notOk(rec.error, JSON.stringify(rec.error));
  t.same(rec.agent, first.records[0]!.agent, 'the same agent section is re-emitted');
  t.equal(s.model.requests.length, requestsAfterFirst, 'the model was not asked again');
  t.equal(fs.readFileSync(path.join(s.checkout, 'runs.txt'), 'utf8'), 'once\n', 'the agent ran once');
  t.equal(readJson<RunStatus>(path.join(s.runRoot, RUN_FILES.status)).agent_runs, 1, 'status.json agent_runs counts one start');
});

t.test('a failed agent run is not marked complete: the next try runs it, agent_runs counts both', async (t) => {
  const s = await scratch(t, { turns: [], watcher: { runner_cmd: 'false' } });
  // `false` exits 1 at once: the agent failed
  const first = await s.start().done;
  t.equal(first.records[0]!.error?.code, 'agent_failed', first.stderr);
  t.notOk(fs.existsSync(path.join(s.runRoot, 'steps', 'run-codex.json')));
  await s.start().done;
  t.equal(readJson<RunStatus>(path.join(s.runRoot, RUN_FILES.status)).agent_runs, 2);
});

t.test('forged records naming places outside the valet fail with foreign_path before the agent starts', async (t) => {
  const s = await scratch(t, { turns: [messageTurn('should not run')] });
  const elsewhere = fs.mkdtempSync(path.join(s.root, 'elsewhere-'));
  const forged = [
    { ...s.record, claim: { ...s.record.claim!, run_root: elsewhere } },
    { ...s.record, checkout: { ...s.record.checkout!, dir: elsewhere } },
    { ...s.record, claim: { ...s.record.claim!, path: '/etc/passwd' } },
  ];
  const r = await s.start({ input: forged.map((f) => JSON.stringify(f) + '\n').join('') }).done;
  t.equal(r.records.length, 3);
  for (const out of r.records) t.match(out.error, { step: 'run-codex', code: 'foreign_path', retryable: false });
  t.equal(s.model.requests.length, 0, 'no agent ran');
  t.same(fs.readdirSync(elsewhere), [], 'nothing was written to the forged places');
});
