import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { readRunStatus } from '@prompt-valet/core';
import { originBranches, waitFor } from '@prompt-valet/testkit';
import { startScaleOut } from './lib/scale-out.js';

const REPOS = ['widget', 'gadget', 'gizmo'];
const PROMPTS = Number(process.env.PV_QUEUE_TEST_PROMPTS ?? 20);

t.test(`${PROMPTS} prompts over ${REPOS.length} repositories, one valet, two workers with roots of their own`, async (t) => {
  const s = await startScaleOut({ repos: REPOS, workers: 2 });
  t.teardown(() => s.close());
  const recv = await s.startReceiver();
  const workers = [s.startWorker(1, { slots: 2 }), s.startWorker(2, { slots: 2 })];
  for (let i = 0; i < PROMPTS; i++) {
    const repo = REPOS[i % REPOS.length]!;
    await s.valet.root.dropPrompt(`${repo}/main/task-${i}.prompt.md`, s.valet.prompt(`echo ${i} > note-${i}.txt`, `Task ${i}`));
  }
  const d = await s.dispatch();
  t.equal(d.code, 0, `the dispatch pipeline ran: ${d.stderr}`);
  t.equal(d.stdout, '', 'every record went to the queue (nothing left for the local pv-settle)');
  const finished = await s.valet.waitForFinished(PROMPTS, 240_000).catch((err: unknown) => {
    t.fail(`${(err as Error).message}\nrecv: ${recv.stderr()}\nw1: ${workers[0]!.stderr()}\nw2: ${workers[1]!.stderr()}`);
    return [];
  });
  t.equal(finished.filter((f) => f.endsWith('.done.md')).length, PROMPTS, 'every prompt done');
  t.same(finished.filter((f) => /\.\d+\.done\.md$|\.error\.md$/.test(f)), [], 'each done once, none failed');

  // pv-settle moves the last prompt into finished/ before it writes that run's final state.
  const allDone = async () => (await s.valet.runStatuses()).filter((st) => st.state === 'done').length === PROMPTS;
  await waitFor('every run done in its status', allDone, 15_000, 100).catch(() => undefined);
  const statuses = await s.valet.runStatuses();
  t.equal(statuses.length, PROMPTS, 'one run per prompt on the valet');
  const byWorker = new Map<string, number>();
  for (const st of statuses) byWorker.set(String(st.worker), (byWorker.get(String(st.worker)) ?? 0) + 1);
  t.same([...byWorker.keys()].sort(), ['w1', 'w2'], `runs spread over both workers (${JSON.stringify([...byWorker])})`);
  t.ok(statuses.every((st) => st.state === 'done' && st.pr_url), 'each run done with its PR on the valet');

  const heads = s.valet.github.pullRequests.map((pr) => pr.head);
  t.equal(heads.length, PROMPTS, 'one PR per prompt');
  t.equal(new Set(heads).size, PROMPTS, 'each on its own agent branch');
  let agentBranches = 0;
  for (const repo of REPOS) agentBranches += [...(await originBranches(s.valet.bare(repo))).keys()].filter((b) => b.startsWith('codex/')).length;
  t.equal(agentBranches, PROMPTS, 'one agent branch per prompt upstream');

  // The work happened on the workers: their run folders, not the valet's, have the agent's log.
  for (const st of statuses.slice(0, 3)) {
    const w = String(st.worker) === 'w1' ? s.workerRoots[0]! : s.workerRoots[1]!;
    const onWorker = await readRunStatus(path.join(w, 'processed', st.run_id));
    t.equal(onWorker?.agent_runs, 1, `${st.run_id}: the agent ran once, on ${String(st.worker)}`);
    t.ok(await fsp.readFile(path.join(s.valet.root.processed, st.run_id, 'last-message.md'), 'utf8'), 'the last message came back to the valet');
    const liveLog = await fsp.readFile(path.join(s.valet.root.processed, st.run_id, 'agent.log'), 'utf8').catch(() => '');
    t.match(liveLog, new RegExp(`^\\[${String(st.worker)}\\] pv-run-codex: .* running `, 'm'), 'the live log followed the run on the valet, marked with its worker');
    t.match(liveLog, new RegExp(`^\\[${String(st.worker)}\\] pv-queue work: ${String(st.worker)} took job #\\d+`, 'm'), 'the worker said first that it took the job');
    const shown = await fsp.readFile(path.join(s.valet.root.processed, st.run_id, 'worker.txt'), 'utf8');
    t.equal(shown.trim(), String(st.worker), 'worker.txt, which pv-status and pv-web show while the run goes, names the worker');
  }
  // The claim record is removed after the status is written, the last thing pv-settle does.
  const claimsLeft = () => fsp.readdir(path.join(s.valet.root.processed, '.ledger', 'claims'));
  await waitFor('no claim left', async () => (await claimsLeft()).length === 0, 15_000, 100).catch(() => undefined);
  t.same(await claimsLeft(), [], 'no claim left');
  await recv.stop();
  for (const w of workers) await w.stop();
});

t.test('pv-watcher with dispatch: nats claims, resolves and dispatches; the worker and recv do the rest', async (t) => {
  const s = await startScaleOut({ repos: ['widget'], workers: 1 });
  t.teardown(() => s.close());
  const recv = await s.startReceiver();
  const worker = s.startWorker(1);
  await s.valet.root.dropPrompt('widget/main/a.prompt.md', s.valet.prompt('echo a > a.txt', 'A'));
  await s.valet.root.dropPrompt('widget/dev/b.prompt.md', s.valet.prompt('echo b > b.txt', 'B'));
  const once = await s.valet.runOnce();
  t.equal(once.code, 0, 'the watcher ran its pipelines');
  t.match(once.stderr, /dispatched as PV_JOBS #\d+/, 'its pipelines dispatched');
  t.same(await s.valet.waitForFinished(2, 90_000), ['widget/dev/b.done.md', 'widget/main/a.done.md'], 'both done');
  t.equal(s.valet.github.pullRequests.length, 2, 'two PRs');
  t.notMatch(once.stderr, /pv-clone|pv-run-codex/, 'no costly step ran on the valet host');
  await recv.stop();
  await worker.stop();
});
