// Two pv-watcher daemons over one inbox: each prompt runs exactly once.
import t from 'tap';
import { startPipelineFixture } from '@prompt-valet/testkit';

// Many real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(900_000);

t.test('two watchers over 50 prompts: each prompt runs exactly once', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'], publisher: 'none', config: { watcher: { max_parallel: 2 } } });
  t.teardown(() => v.close());
  for (let i = 0; i < 50; i++) {
    // No sh block: the agent answers at once and changes nothing, so the
    // test is about claiming, not about the agent's speed.
    await v.root.dropPrompt(`widget/${i % 2 ? 'main' : 'dev'}/p${i}.prompt.md`, v.prompt(undefined));
  }
  const a = v.startWatcher();
  const b = v.startWatcher();
  t.teardown(() => Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]));
  const finished = await v.waitForFinished(50, 400_000);
  t.equal(finished.length, 50);
  t.ok(finished.every((f) => f.endsWith('.done.md')), 'all done (no changes is a success)');
  t.equal(await a.stop(), 0);
  t.equal(await b.stop(), 0);
  const statuses = await v.runStatuses();
  t.equal(statuses.length, 50, '50 runs for 50 prompts');
  t.equal(new Set(statuses.map((s) => s.prompt_rel)).size, 50, 'no prompt ran twice');
  t.ok(statuses.every((s) => s.outcome === 'no_changes'));
  const claimedBy = [a.stderr(), b.stderr()].map((e) => (e.match(/pv-claim: claimed /g) ?? []).length);
  t.equal(claimedBy[0]! + claimedBy[1]!, 50, `claims split ${claimedBy.join(' / ')} between the two watchers`);
});
