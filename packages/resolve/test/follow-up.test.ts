import t, { type Test } from 'tap';
import * as path from 'node:path';
import { markStepDone, recordFollowUp, updateRunStatus, type PvRecord, type RunState, type TargetSection } from '@prompt-valet/core';
import { makeValetRoot, runBin, type ValetRoot } from '@prompt-valet/testkit';

/**
 * pv-resolve's side of follow-ups, with earlier runs' folders made by hand
 * (steps/resolve.json and status.json, as the pipeline leaves them): which
 * runs a follow-up continues, and that it waits while one is unsettled.
 */
const ROOT_RUN = '20261130-070000-000-aaaaaaaa';
const LATER_RUN = '20261130-070500-000-bbbbbbbb';
const BRANCH = `codex/add-a-${ROOT_RUN}`;

async function valet(t: Test): Promise<ValetRoot> {
  const r = await makeValetRoot({});
  t.teardown(() => r.cleanup());
  return r;
}

async function earlierRun(r: ValetRoot, runId: string, state: RunState, extra: Partial<TargetSection> = {}, prUrl?: string): Promise<void> {
  const runRoot = path.join(r.processed, runId);
  const target: TargetSection = {
    owner: 'acme', repo: 'widget', branch: 'main', repo_dir: path.join(r.repos, 'acme', 'widget'),
    clone_url: 'file:///x/acme/widget.git', agent_branch: BRANCH, front_matter: {}, subdirs: [], ...extra,
  };
  if (target.follow_up) await recordFollowUp(r.processed, target.follow_up.root_run, runId);
  await markStepDone(runRoot, 'resolve', target);
  await updateRunStatus(runRoot, { state, prompt_rel: 'widget/main/add-a.prompt.md', agent_branch: BRANCH, ...(prUrl ? { pr_url: prUrl } : {}) });
}

async function claimAndResolve(r: ValetRoot): Promise<PvRecord> {
  const claimed = await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed });
  const res = await runBin('pv-resolve', ['--config', r.configPath], { input: claimed.records });
  return res.records[0]!;
}

t.test('a prompt in the agent branch\'s folder continues the newest done run of that branch, into its base', async (t) => {
  const r = await valet(t);
  await earlierRun(r, ROOT_RUN, 'done', {}, 'https://gh.example/acme/widget/pull/1');
  await earlierRun(r, LATER_RUN, 'done', { follow_up: { via: 'folder', of_run: ROOT_RUN, root_run: ROOT_RUN, previous_run: ROOT_RUN } }, 'https://gh.example/acme/widget/pull/1');
  await r.dropPrompt(`widget/codex~add-a-${ROOT_RUN}/more.prompt.md`, 'More.\n');
  const rec = await claimAndResolve(r);
  t.notOk(rec.error, JSON.stringify(rec.error));
  t.match(rec.target, {
    branch: 'main', agent_branch: BRANCH,
    follow_up: { via: 'folder', of_run: ROOT_RUN, root_run: ROOT_RUN, previous_run: LATER_RUN, pr_url: 'https://gh.example/acme/widget/pull/1' },
  });
});

t.test('follow_up by PR URL finds the newest run of that PR', async (t) => {
  const r = await valet(t);
  await earlierRun(r, ROOT_RUN, 'done', {}, 'https://gh.example/acme/widget/pull/1');
  await r.dropPrompt('widget/main/more.prompt.md', '---\nfollow_up: https://gh.example/acme/widget/pull/1\n---\nMore.\n');
  const rec = await claimAndResolve(r);
  t.match(rec.target, { branch: 'main', agent_branch: BRANCH, follow_up: { via: 'pr_url', of_run: ROOT_RUN, previous_run: ROOT_RUN } });
});

t.test('while an earlier run of the branch is unsettled the follow-up waits (follow_up_busy, retryable)', async (t) => {
  const r = await valet(t);
  await earlierRun(r, ROOT_RUN, 'done');
  await earlierRun(r, LATER_RUN, 'running', { follow_up: { via: 'run_id', of_run: ROOT_RUN, root_run: ROOT_RUN, previous_run: ROOT_RUN } });
  await r.dropPrompt('widget/main/more.prompt.md', `---\nfollow_up: ${ROOT_RUN}\n---\nMore.\n`);
  const rec = await claimAndResolve(r);
  t.match(rec.error, { step: 'resolve', code: 'follow_up_busy', retryable: true, message: new RegExp(`run ${LATER_RUN} on ${BRANCH} is still running`) });
});

t.test('an agent-branch folder of a run this valet does not know is refused, naming the branch', async (t) => {
  const r = await valet(t);
  await r.dropPrompt(`widget/codex~add-a-${ROOT_RUN}/more.prompt.md`, 'More.\n');
  const rec = await claimAndResolve(r);
  t.match(rec.error, { code: 'follow_up_unknown_run', retryable: false, message: new RegExp(`branch ${BRANCH} looks like an agent branch of run ${ROOT_RUN}, which this valet does not know`) });
});
