// A run resumes; it is never redone (docs/lifecycle.md). The whole valet is
// SIGKILLed at each step boundary, restarted, and must end with one agent
// run (two only when the kill hit the agent itself), one agent branch, one
// PR, one settled prompt and one run folder. Retries after a failed push or
// gh call retry the publish, never the agent.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { git, readRunStatus } from '@prompt-valet/core';
import { killAllOf, startPipelineFixture, valetProcesses, waitFor, writeHangingWrapper, type HangSpec, type PipelineFixture } from '@prompt-valet/testkit';

// Real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(1_800_000);


/** Kill every process of this valet (as systemd would with the whole unit). */
const killValet = (v: PipelineFixture): Promise<void> => killAllOf('valet process', () => valetProcesses(v.root.configPath));

/** How often an agent started: each codex run's first request to the model carries no tool output. */
function agentStarts(v: PipelineFixture): number {
  return v.model.requests.filter((r) => !JSON.stringify(r.body).includes('function_call_output')).length;
}

async function agentBranches(v: PipelineFixture): Promise<string[]> {
  const out = (await git(['for-each-ref', '--format=%(refname:short)', 'refs/heads/codex/'], { cwd: v.bare('widget') })).stdout;
  return out.split('\n').filter(Boolean);
}

function runFolders(v: PipelineFixture): string[] {
  return fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.'));
}

/** What every crash and retry must end with. */
async function assertOneOfEverything(t: Test, v: PipelineFixture, maxAgentStarts: number, maxCountedRuns = maxAgentStarts): Promise<void> {
  const finished = await v.waitForFinished(1, 240_000);
  t.same(finished, ['widget/main/task.done.md'], 'one settled prompt, done');
  t.same(fs.readdirSync(path.join(v.root.inbox, 'widget/main')), [], 'nothing left in the inbox');
  const starts = agentStarts(v);
  t.ok(starts >= 1 && starts <= maxAgentStarts, `the agent started ${starts} time(s) (at most ${maxAgentStarts})`);
  t.equal((await agentBranches(v)).length, 1, 'one agent branch upstream');
  t.equal(v.github.pullRequests.length, 1, 'one PR');
  const runs = runFolders(v);
  t.equal(runs.length, 1, 'one run folder: the run was resumed under its own id');
  // The watcher still runs: pv-settle writes the final state a moment after the prompt reaches finished/.
  const runDone = async () => (await readRunStatus(path.join(v.root.processed, runs[0]!)))?.state === 'done';
  await waitFor('the run done in its status', runDone, 15_000, 50).catch(() => undefined);
  const status = await readRunStatus(path.join(v.root.processed, runs[0]!));
  t.equal(status?.state, 'done');
  t.ok((status?.agent_runs ?? 0) >= 1 && (status?.agent_runs ?? 0) <= maxCountedRuns,
    `status.json agent_runs ${status?.agent_runs} (at most ${maxCountedRuns})`);
}

interface CrashPoint {
  name: string;
  /** the stand-in that marks the moment (PATH wrapper, or gh_cmd / runner_cmd), or the agent's own sleep */
  hang?: Omit<HangSpec, 'dir' | 'marker'> & { via: 'path' | 'gh_cmd' | 'runner_cmd' };
  /** the prompt's script */
  script: string;
  /** agent starts the fake model may see (a kill during the agent allows a second) */
  maxAgentStarts: number;
  /** starts status.json may count, when the kill falls between the count and the start */
  maxCountedRuns?: number;
}

const WORK = 'echo work > work.txt';

const CRASH_POINTS: CrashPoint[] = [
  {
    name: 'after claim (pv-clone fetching)', script: WORK, maxAgentStarts: 1,
    hang: { via: 'path', name: 'git', real: '/usr/bin/git', pattern: 'fetch', when: 'before' },
  },
  {
    // pv-run-codex counts a start (status.json agent_runs) just before it starts the jail: the kill
    // lands after the count and before the agent, so 2 starts are counted and 1 happened.
    name: 'after clone (the agent about to start)', script: WORK, maxAgentStarts: 1, maxCountedRuns: 2,
    // pv-run-codex about to start the jail (its bwrap, found on PATH, gets the run's checkout;
    // the jail probe at the watcher's start does not). A stand-in runner would not do: the
    // jail hides the temporary folder it lives in.
    hang: { via: 'path', name: 'bwrap', real: '/usr/bin/bwrap', pattern: '*/.worktrees/*', when: 'before' },
  },
  { name: 'during the agent', script: `sleep 8; ${WORK}`, maxAgentStarts: 2 },
  {
    name: 'after the agent (pv-publish starting)', script: WORK, maxAgentStarts: 1,
    hang: { via: 'path', name: 'git', real: '/usr/bin/git', pattern: 'ls-remote', when: 'before' },
  },
  {
    name: 'after push', script: WORK, maxAgentStarts: 1,
    hang: { via: 'path', name: 'git', real: '/usr/bin/git', pattern: 'push', when: 'after' },
  },
  {
    name: 'after PR', script: WORK, maxAgentStarts: 1,
    hang: { via: 'gh_cmd', name: 'gh', real: '/usr/bin/gh', pattern: 'create', when: 'after' },
  },
  {
    name: 'during settle (between the two renames)', script: WORK, maxAgentStarts: 1,
    hang: { via: 'path', name: 'mv', real: '/usr/bin/mv', pattern: '*.done.md', when: 'after' },
  },
];

async function waitForAgentSleeping(v: PipelineFixture): Promise<void> {
  await waitFor('the agent running its script', () => {
    for (const id of runFolders(v)) {
      const log = path.join(v.root.processed, id, 'agent.log');
      if (fs.existsSync(log) && /sleep 8/.test(fs.readFileSync(log, 'utf8'))) return true;
    }
    return false;
  }, 120_000, 100);
}

for (const c of CRASH_POINTS) {
  t.test(`SIGKILL of the whole valet ${c.name}: resumed, one agent run, one branch, one PR`, async (t) => {
    const v = await startPipelineFixture({ repos: ['widget'], prefix: 'pv-crashpoint-' });
    t.teardown(() => v.close());
    const cleanPath = v.env.PATH;
    const marker = path.join(v.root.root, 'reached');
    if (c.hang) {
      const wrapper = await writeHangingWrapper({ ...c.hang, dir: path.join(v.root.root, 'hang-bin'), marker });
      if (c.hang.via === 'path') v.env.PATH = `${path.dirname(wrapper)}:${cleanPath}`;
      else await v.root.configure({ watcher: { [c.hang.via]: wrapper } });
    }
    await v.root.dropPrompt('widget/main/task.prompt.md', v.prompt(c.script, 'Crash point'));
    const first = v.startWatcher();
    t.teardown(() => first.stop('SIGKILL'));
    if (c.hang) await waitFor(`the valet to reach: ${c.name}`, () => fs.existsSync(marker), 180_000, 100);
    else await waitForAgentSleeping(v);
    await killValet(v);
    await first.exited;

    // the restart runs with the real programs
    v.env.PATH = cleanPath;
    if (c.hang?.via === 'gh_cmd') await v.root.configure({ watcher: { gh_cmd: 'gh' } });
    const second = v.startWatcher();
    t.teardown(() => second.stop('SIGKILL'));
    // A stand-in runner killed before it reached codex was still a start pv-run-codex counted.
    await assertOneOfEverything(t, v, c.maxAgentStarts, c.maxCountedRuns ?? c.maxAgentStarts);
    t.equal(await second.stop(), 0);
  });
}

t.test('a gh failure is retried by retrying the publish: the agent ran once', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'], prefix: 'pv-crashpoint-' });
  t.teardown(() => v.close());
  v.github.failNext('PullRequestCreate', 502);
  await v.root.dropPrompt('widget/main/task.prompt.md', v.prompt(WORK, 'Retry gh'));
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));
  await assertOneOfEverything(t, v, 1);
  const status = await readRunStatus(path.join(v.root.processed, runFolders(v)[0]!));
  t.equal(status?.attempt, 2, 'the retry was a second try of the same run');
  t.equal(status?.agent_runs, 1);
  t.equal(await w.stop(), 0);
});

t.test('a rejected push is retried by retrying the publish: the agent ran once', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'], prefix: 'pv-crashpoint-' });
  t.teardown(() => v.close());
  // origin refuses the first push only
  const once = path.join(v.root.root, 'refused-once');
  fs.writeFileSync(path.join(v.bare('widget'), 'hooks', 'pre-receive'),
    `#!/bin/sh\nif [ ! -e '${once}' ]; then touch '${once}'; echo 'not now' >&2; exit 1; fi\n`, { mode: 0o755 });
  await v.root.dropPrompt('widget/main/task.prompt.md', v.prompt(WORK, 'Retry push'));
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));
  await assertOneOfEverything(t, v, 1);
  t.ok(fs.existsSync(once), 'the first push was refused');
  t.equal(await w.stop(), 0);
});


t.test('a claimer looking while pv-settle\'s retry is still moving the prompt leaves it: one run, settled done', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'], prefix: 'pv-crashpoint-' });
  t.teardown(() => v.close());
  // pv-settle's retry renames x.running.md to x.prompt.md, and the watcher's waiting claimer, told by
  // the rename's file event, looks at once. This mv holds pv-settle in the move for up to 3 s after the
  // rename, or until the prompt is taken. The run's claim record stands until pv-settle has let go, so
  // the claimer leaves the prompt, and the run is resumed once the pipeline has ended. Before: the
  // claimer took it back at once, pv-settle took its own renamed file for a taken name and moved the
  // new claim's x.running.md on to x.2.prompt.md, and two pipelines ran the run (seen once in the test
  // above on a loaded machine: settled as task.2.done.md, status left "published"; docs/lifecycle.md,
  // "Handing a run on").
  const bin = path.join(v.root.root, 'claimed-first-bin');
  const takenMeanwhile = path.join(v.root.root, 'taken-during-the-move');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'mv'), [
    '#!/bin/sh',
    '/usr/bin/mv "$@" || exit $?',
    'eval "dest=\\${$#}"',
    'case "$dest" in *.prompt.md) i=0; while [ -e "$dest" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done',
    `  [ -e "$dest" ] || touch '${takenMeanwhile}';;`,
    'esac',
    '',
  ].join('\n'), { mode: 0o755 });
  v.env.PATH = `${bin}:${v.env.PATH}`;
  v.github.failNext('PullRequestCreate', 502);
  await v.root.dropPrompt('widget/main/task.prompt.md', v.prompt(WORK, 'Retry gh, claimed at once'));
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));
  await assertOneOfEverything(t, v, 1);
  t.notOk(fs.existsSync(takenMeanwhile), 'no claimer took the prompt while pv-settle was still in its move');
  const status = await readRunStatus(path.join(v.root.processed, runFolders(v)[0]!));
  t.equal(status?.attempt, 2, 'the retry was the second try of the same run, and the only one');
  t.notMatch(w.stderr(), /claim_missing|\.2\.prompt\.md/, 'no second pipeline for the run');
  t.equal(await w.stop(), 0);
});
