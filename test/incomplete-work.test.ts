import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INCOMPLETE_LABEL, readRunStatus, RUN_FILES } from '@prompt-valet/core';
import { startPipelineFixture, waitFor, type PipelineFixture } from '@prompt-valet/testkit';

/**
 * No lost work (issue 18, part 2), end to end: the real codex against the
 * fake model, real git against the loopback origin, the real gh against the
 * fake GitHub. The agent writes a file, then keeps busy; what stops it
 * decides the prompt's fate, and its file must end up on the agent branch
 * in one draft PR labelled prompt-valet:incomplete.
 */
const BUSY_AGENT = 'echo partial > partial.txt && sleep 60';

function agentBranches(v: PipelineFixture): string[] {
  const out = execFileSync('git', ['--git-dir', v.bare('widget'), 'for-each-ref', '--format=%(refname:short)', 'refs/heads/codex/'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

function fileOnBranch(v: PipelineFixture, branch: string, file: string): string {
  return execFileSync('git', ['--git-dir', v.bare('widget'), 'show', `${branch}:${file}`], { encoding: 'utf8' });
}

function reasonFile(v: PipelineFixture, name: string): string {
  return fs.readFileSync(path.join(v.root.finished, 'widget/main', name), 'utf8');
}

/** The one run's status once the prompt has settled. */
async function onlyRun(t: Test, v: PipelineFixture) {
  const statuses = await v.runStatuses();
  t.equal(statuses.length, 1, 'one run');
  return statuses[0]!;
}

function checkKeptInDraft(t: Test, v: PipelineFixture, reason: string, code: string): void {
  t.equal(v.github.pullRequests.length, 1, 'exactly one PR');
  const pr = v.github.pullRequests[0]!;
  t.equal(pr.draft, true, 'a draft');
  t.ok(pr.labels.includes(INCOMPLETE_LABEL), `labelled ${INCOMPLETE_LABEL}`);
  t.match(pr.body, new RegExp(`Incomplete \\(${reason}\\)`), 'the body says the work is unfinished');
  const branches = agentBranches(v);
  t.same(branches, [pr.head], 'the work is on the agent branch the PR is from');
  t.equal(fileOnBranch(v, pr.head, 'partial.txt'), 'partial\n', 'what the agent wrote is pushed');
  const why = reasonFile(v, 'x.error.txt');
  t.match(why, new RegExp(`# Prompt failed: ${code}`));
  t.match(why, new RegExp(`- stopped: ${reason}`));
  t.match(why, `- work so far: draft pull request ${pr.url}`, 'the reason beside the prompt links the draft');
}

t.test('a run killed by its time limit leaves its work on the agent branch and one draft PR with the label', async (t) => {
  const v = await startPipelineFixture({ agentYieldMs: 60_000, config: { watcher: { runner_timeout_seconds: 4, runner_kill_grace_seconds: 1 } } });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/x.prompt.md', v.prompt(BUSY_AGENT, 'Busy'));
  const { code, stderr } = await v.runOnce();
  t.equal(code, 0, stderr);
  t.same(await v.listFinished(), ['widget/main/x.error.md', 'widget/main/x.error.txt'], 'settled as an error');
  checkKeptInDraft(t, v, 'timeout', 'agent_timeout');
  const st = await onlyRun(t, v);
  t.equal(st.state, 'error');
  t.equal(st.pr_url, v.github.pullRequests[0]!.url, 'status.json links the draft');
  t.match(st.error, { code: 'agent_timeout', retryable: false, incomplete: { reason: 'timeout', pr_url: v.github.pullRequests[0]!.url } });
  t.match(st.error?.message, /its work so far is in draft pull request/);
  t.equal(st.agent_runs, 1, 'not retried: the agent ran once');
});

t.test('with keep_incomplete_work: false nothing is pushed', async (t) => {
  const v = await startPipelineFixture({
    agentYieldMs: 60_000,
    config: { watcher: { runner_timeout_seconds: 4, runner_kill_grace_seconds: 1, keep_incomplete_work: false } },
  });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/x.prompt.md', v.prompt(BUSY_AGENT, 'Busy'));
  const { code, stderr } = await v.runOnce();
  t.equal(code, 0, stderr);
  t.same(await v.listFinished(), ['widget/main/x.error.md', 'widget/main/x.error.txt']);
  t.same(agentBranches(v), [], 'no agent branch on origin');
  t.equal(v.github.pullRequests.length, 0, 'no PR');
  t.match(reasonFile(v, 'x.error.txt'), /- work not kept: watcher\.keep_incomplete_work is false/);
  const st = await onlyRun(t, v);
  const checkout = path.join(v.root.repos, '.worktrees', 'acme', 'widget', st.run_id, 'partial.txt');
  t.equal(fs.readFileSync(checkout, 'utf8'), 'partial\n', 'the work stays in the run\'s checkout');
});

t.test('the operator\'s abort keeps the work the same way', async (t) => {
  const v = await startPipelineFixture({ agentYieldMs: 60_000, config: { watcher: { runner_kill_grace_seconds: 1 } } });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/x.prompt.md', v.prompt(BUSY_AGENT, 'Busy'));
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));
  // Abort once the agent has written its file (as pv-web's abort does: the run folder's abort file).
  const runId = await waitFor('the agent to have written its file', () => {
    for (const id of fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.'))) {
      if (fs.existsSync(path.join(v.root.repos, '.worktrees', 'acme', 'widget', id, 'partial.txt'))) return id;
    }
    return undefined;
  }, 120_000, 100);
  fs.writeFileSync(path.join(v.root.processed, runId, RUN_FILES.abort), 'aborted by the test\n');
  await v.waitForFinished(1);
  t.equal(await w.stop(), 0);
  checkKeptInDraft(t, v, 'aborted', 'aborted');
  const st = await readRunStatus(path.join(v.root.processed, runId));
  t.match(st?.error, { code: 'aborted', incomplete: { reason: 'aborted' } });
});

t.test('a budget of a few tokens stops the agent and settles budget_exceeded, its work kept', async (t) => {
  const v = await startPipelineFixture({ config: { watcher: { runner_max_tokens: 10, runner_kill_grace_seconds: 1 } } });
  t.teardown(() => v.close());
  // One response (15 tokens) is past the cap: the agent is stopped there, or, if it finishes
  // within the next poll, it ends past its cap all the same.
  await v.root.dropPrompt('widget/main/x.prompt.md', v.prompt('echo partial > partial.txt', 'Busy'));
  const { code, stderr } = await v.runOnce();
  t.equal(code, 0, stderr);
  checkKeptInDraft(t, v, 'budget_exceeded', 'budget_exceeded');
  const st = await onlyRun(t, v);
  t.match(st.error, { code: 'budget_exceeded', retryable: false });
  t.ok((st.usage?.total_tokens ?? 0) > 10, `the usage is recorded (${st.usage?.total_tokens})`);
  t.equal(st.agent_runs, 1, 'not retried');
});

t.test('GitHub failing while the work is kept: the run resumes, the agent is not run again, the draft is opened', async (t) => {
  const v = await startPipelineFixture({ agentYieldMs: 60_000, config: { watcher: { runner_timeout_seconds: 4, runner_kill_grace_seconds: 1 } } });
  t.teardown(() => v.close());
  v.github.failNext('PullRequestCreate', 502);
  await v.root.dropPrompt('widget/main/x.prompt.md', v.prompt(BUSY_AGENT, 'Busy'));
  const w = v.startWatcher();
  t.teardown(() => w.stop('SIGKILL'));
  await v.waitForFinished(1);
  t.equal(await w.stop(), 0);
  checkKeptInDraft(t, v, 'timeout', 'agent_timeout');
  const st = await onlyRun(t, v);
  t.match(st, { state: 'error', attempt: 2, agent_runs: 1 }, 'two tries, one agent run');
  t.match(st.error, { code: 'agent_timeout', incomplete: { reason: 'timeout', pr_url: v.github.pullRequests[0]!.url } });
});
