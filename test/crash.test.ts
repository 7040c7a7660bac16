// pv-watcher crashes and stops: nothing is lost, nothing runs twice, no
// agent process outlives its run.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRunStatus, takeLock } from '@prompt-valet/core';
import { killAllOf, startPipelineFixture, valetProcesses, waitFor, type PipelineFixture } from '@prompt-valet/testkit';

// Real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(900_000);

async function waitForRunning(v: PipelineFixture): Promise<string> {
  return waitFor('a run whose agent is running', async () => {
    for (const id of fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.'))) {
      const st = await readRunStatus(path.join(v.root.processed, id));
      const log = path.join(v.root.processed, id, 'agent.log');
      if (st?.state === 'running' && fs.existsSync(log) && /sleep/.test(fs.readFileSync(log, 'utf8'))) return id;
    }
    return undefined;
  }, 120_000, 100);
}

function inboxFiles(v: PipelineFixture): string[] {
  return fs.readdirSync(path.join(v.root.inbox, 'widget/main'));
}

t.test('watcher and pipelines SIGKILLed mid-run (as systemd would): the restart resumes the run under its id, one PR', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'] });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/slow.prompt.md', v.prompt('sleep 3 && echo ok > slow.txt', 'Slow one'));
  const first = v.startWatcher();
  const firstRun = await waitForRunning(v);
  await killAllOf('valet process', () => valetProcesses(v.root.configPath), 20_000);
  await first.exited;
  t.same(inboxFiles(v), ['slow.running.md'], 'the claim is left behind by the crash');

  const second = v.startWatcher();
  t.teardown(() => second.stop('SIGKILL'));
  const finished = await v.waitForFinished(1, 180_000);
  t.same(finished, ['widget/main/slow.done.md']);
  t.equal(await second.stop(), 0);
  t.match(second.stderr(), /recovered 1 claim/);
  t.same(inboxFiles(v), [], 'nothing left as .running.md');
  t.equal(v.github.pullRequests.length, 1, 'exactly one PR');
  const runs = fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.'));
  t.same(runs, [firstRun], 'one run: the crashed one, resumed under its run id');
  const resumed = await readRunStatus(path.join(v.root.processed, firstRun));
  t.equal(resumed?.state, 'done');
  t.equal(resumed?.attempt, 2, 'the crash counted as an attempt');
  t.equal(resumed?.resumed, 1, 'resumed once');
  t.same(fs.readdirSync(path.join(v.root.processed, '.ledger', 'claims')), [], 'no claim left');
  // The killed watcher's waiting pipeline left its lock file (swept after an hour): free, and named by nothing.
  for (const name of fs.readdirSync(path.join(v.root.processed, '.ledger', 'locks'))) {
    const lock = await takeLock(path.join(v.root.processed, '.ledger', 'locks', name));
    t.ok(lock, `${name} is held by nobody`);
    await lock?.release();
  }
});

t.test('only the watcher SIGKILLed: its pipeline finishes the run, the restart leaves the live claim alone', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'] });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/slow.prompt.md', v.prompt('sleep 3 && echo ok > slow.txt', 'Slow one'));
  const first = v.startWatcher();
  await waitForRunning(v);
  first.child.kill('SIGKILL');
  await first.exited;
  const second = v.startWatcher();
  t.teardown(() => second.stop('SIGKILL'));
  const finished = await v.waitForFinished(1, 180_000);
  t.same(finished, ['widget/main/slow.done.md']);
  t.equal(await second.stop(), 0);
  t.notMatch(second.stderr(), /recovered/, 'a claim held by a live pipeline is not recovered');
  t.equal(fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.')).length, 1, 'it ran once');
  t.equal(v.github.pullRequests.length, 1, 'exactly one PR');
});

t.test('SIGTERM during a run: graceful stop, prompt back to pending, no agent left', async (t) => {
  const v = await startPipelineFixture({
    repos: ['widget'],
    config: { watcher: { shutdown_grace_seconds: 1, runner_kill_grace_seconds: 1 } },
  });
  t.teardown(() => v.close());
  const text = v.prompt('sleep 60 && echo late > late.txt', 'Long one');
  await v.root.dropPrompt('widget/main/long.prompt.md', text);
  const w = v.startWatcher();
  const runId = await waitForRunning(v);
  const code = await w.stop('SIGTERM', 60_000);
  t.equal(code, 0, 'exit 0 after a graceful stop');
  t.match(w.stderr(), /SIGTERM: stopping/);
  t.same(inboxFiles(v), ['long.prompt.md'], 'the prompt is pending again');
  t.equal(fs.readFileSync(path.join(v.root.inbox, 'widget/main/long.prompt.md'), 'utf8'), text, 'unchanged');
  t.same(valetProcesses(v.root.configPath), [], 'no codex (or any valet process) survives');
  const st = await readRunStatus(path.join(v.root.processed, runId));
  t.equal(st?.state, 'retry');
  t.equal(st?.error?.code, 'aborted_shutdown');
  t.equal(v.github.pullRequests.length, 0);
});

/** Processes of one pipeline: they (and only they) carry its claim lock's id in their environment. */
const pipelineProcesses = (configPath: string): number[] => valetProcesses(configPath, (e) => e.startsWith('PV_CLAIM_LOCK='));

t.test('a pipeline SIGKILLed under a live watcher: its lock is free, the watcher recovers and resumes the run under its id', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'] });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/slow.prompt.md', v.prompt('sleep 3 && echo ok > slow.txt', 'Slow one'));
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));
  const runId = await waitForRunning(v);
  await killAllOf('process of the pipelines', () => pipelineProcesses(v.root.configPath), 20_000, 50);
  const finished = await v.waitForFinished(1, 180_000);
  t.same(finished, ['widget/main/slow.done.md']);
  t.equal(w.child.exitCode, null, 'the watcher lived on');
  t.match(w.stderr(), /recovered 1 claim\(s\) whose pipeline had died \(a pipeline ended without settling\)/);
  t.same(fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.')), [runId], 'one run, resumed under its id');
  // The watcher still runs: pv-settle writes the final state a moment after the prompt reaches finished/.
  const finalStatus = async () => (await readRunStatus(path.join(v.root.processed, runId)))?.state === 'done';
  await waitFor('the run done in its status', finalStatus, 15_000, 50).catch(() => undefined);
  const st = await readRunStatus(path.join(v.root.processed, runId));
  t.match(st, { state: 'done', attempt: 2, resumed: 1 });
  t.equal(v.github.pullRequests.length, 1, 'exactly one PR');
  t.equal(await w.stop(), 0);
});
