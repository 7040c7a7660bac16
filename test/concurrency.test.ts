// pv-watcher running as a daemon: parallel runs across and within
// repositories.
import t from 'tap';
import * as path from 'node:path';
import { git } from '@prompt-valet/core';
import { originBranches, startPipelineFixture } from '@prompt-valet/testkit';

// Many real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(900_000);

t.test('12 prompts over 3 repositories with max_parallel 3: each runs once, each PR on its own branch', async (t) => {
  const repos = ['alpha', 'beta', 'gamma'];
  const v = await startPipelineFixture({ repos, config: { watcher: { max_parallel: 3 } } });
  t.teardown(() => v.close());
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));

  const expected = new Map<string, string>();
  for (let i = 0; i < 12; i++) {
    const repo = repos[i % 3]!;
    const name = `task-${i}`;
    expected.set(`${repo}/main/${name}.done.md`, `${name}.txt`);
    await v.root.dropPrompt(`${repo}/main/${name}.prompt.md`, v.prompt(`echo ${name} > ${name}.txt`, `Task ${i}`));
  }
  const finished = await v.waitForFinished(12, 240_000);
  t.same(finished, [...expected.keys()].sort(), 'all 12 done, none errored, none twice');
  t.equal(await w.stop(), 0, 'SIGTERM on an idle watcher: exit 0');

  const statuses = await v.runStatuses();
  t.equal(statuses.length, 12, 'exactly 12 runs: no prompt ran twice');
  t.ok(statuses.every((s) => s.state === 'done'));
  t.equal(v.github.pullRequests.length, 12, '12 PRs');
  t.equal(new Set(v.github.pullRequests.map((p) => p.head)).size, 12, 'each on its own branch');

  // Each agent branch holds its own prompt's file and no other prompt's.
  for (const s of statuses) {
    const file = `${path.basename(s.prompt_rel, '.prompt.md')}.txt`;
    const { stdout } = await git(['diff', '--name-only', `main...${s.agent_branch}`], { cwd: v.bare(s.repo!) });
    const changed = stdout.split('\n').filter((f) => !f.startsWith('docs/AGENT_RUNS/'));
    t.same(changed, [file], `${s.agent_branch} changes only ${file}`);
  }
  // Runs overlapped: some run started before another one ended.
  const spans = statuses.map((s) => [Date.parse(s.created_at), Date.parse(s.updated_at)] as const).sort((a, b) => a[0] - b[0]);
  t.ok(spans.some((a, i) => spans.slice(i + 1).some((b) => b[0] < a[1])), 'runs ran in parallel');
  for (const repo of repos) {
    const branches = await originBranches(v.bare(repo));
    t.equal([...branches.keys()].filter((b) => b.startsWith('codex/')).length, 4, `${repo}: 4 agent branches`);
  }
});

