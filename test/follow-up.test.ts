// End to end: follow-ups (issue 18, part 1). A prompt dropped into an agent
// branch's folder, or naming an earlier run in its front matter, continues
// that work: the real codex resumes the earlier session (the fake model sees
// the earlier turns), pv-publish pushes onto the same branch, and the one PR
// gets a comment from the real gh instead of a second PR.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { branchToFolder, git, type RunStatus } from '@prompt-valet/core';
import { requestText, startPipelineFixture, type PipelineFixture } from '@prompt-valet/testkit';

t.setTimeout(900_000);

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

async function newestRun(v: PipelineFixture): Promise<RunStatus> {
  const all = await v.runStatuses();
  return all[all.length - 1]!;
}

/** The model requests of one run: those whose newest prompt holds `marker`. */
function requestsWith(v: PipelineFixture, marker: string): string[] {
  return v.model.requests.map((r) => requestText(r.body)).filter((text) => text.includes(marker));
}

t.test('a follow-up resumes the session, pushes to the same branch and comments on the one PR; and a follow-up of it', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'] });
  t.teardown(() => v.close());

  await v.root.dropPrompt('widget/main/add-a.prompt.md', v.prompt('echo one > a.txt', 'Add a'));
  t.equal((await v.runOnce()).code, 0);
  const first = await newestRun(v);
  t.equal(first.state, 'done');
  const branch = first.agent_branch!;
  const firstRoot = path.join(v.root.processed, first.run_id);
  const session = readJson<{ session_id: string; file: string }>(path.join(firstRoot, 'session.json'));
  t.match(session.session_id, /^[0-9a-f-]{36}$/, 'the run recorded its codex session');
  t.ok(fs.existsSync(path.join(firstRoot, 'jail', 'codex-home', session.file)), 'the session file is in the run\'s CODEX_HOME');
  t.equal(readJson<{ section: { session_id?: string } }>(path.join(firstRoot, 'steps', 'run-codex.json')).section.session_id, session.session_id);
  t.equal(v.github.pullRequests.length, 1);
  const pr = v.github.pullRequests[0]!;

  // pv-tree mirrors the agent branch as a folder; a prompt dropped there is a follow-up.
  const folder = `widget/${branchToFolder(branch)}`;
  await fs.promises.mkdir(path.join(v.root.inbox, folder), { recursive: true });
  await v.root.dropPrompt(`${folder}/add-b.prompt.md`, v.prompt('echo two > b.txt', 'Add b'));
  t.equal((await v.runOnce()).code, 0);
  const second = await newestRun(v);
  t.not(second.run_id, first.run_id);
  t.match(second, { state: 'done', agent_branch: branch, branch: 'main', outcome: 'pr_commented', follow_up_of: first.run_id, pr_url: pr.url });
  const secondAgent = readJson<{ section: { session_id?: string; continued?: string } }>(path.join(v.root.processed, second.run_id, 'steps', 'run-codex.json')).section;
  t.equal(secondAgent.continued, 'resumed');
  t.equal(secondAgent.session_id, session.session_id, 'the follow-up went on in the same codex session');
  const seen = requestsWith(v, 'echo two > b.txt');
  t.ok(seen.length > 0 && seen.every((text) => text.includes('echo one > a.txt')), 'the model saw the earlier turns with the new prompt');
  t.match(fs.readFileSync(path.join(v.root.processed, second.run_id, 'agent.log'), 'utf8'), /follow-up: resuming codex session/);
  t.same(await v.listFinished(), [`${folder}/add-b.done.md`, 'widget/main/add-a.done.md'].sort());

  t.equal(v.github.pullRequests.length, 1, 'no second PR');
  t.equal(pr.comments.length, 1, 'one comment on the PR');
  t.match(pr.comments[0]!.body, /Follow-up:\*\* Add b/);
  t.match(pr.comments[0]!.body, `prompt-valet run_id=${second.run_id}`);
  t.match(pr.comments[0]!.body, /Ran the prompt's script/);
  t.ok(v.github.requests.some((r) => r.operation === 'CommentCreate'), 'the real gh posted the comment');

  // Upstream: the branch went on from the first run's commit.
  const log = async () => (await git(['log', '--format=%(trailers:key=Prompt-Valet-Run,valueonly)', branch], { cwd: v.bare('widget') })).stdout
    .split('\n').map((l) => l.trim()).filter(Boolean);
  t.same((await log()).slice(0, 2), [second.run_id, first.run_id], 'the follow-up\'s commit is on top of the first run\'s');
  const show = async (file: string) => (await git(['show', `${branch}:${file}`], { cwd: v.bare('widget') })).stdout;
  t.equal(await show('a.txt'), 'one');
  t.equal(await show('b.txt'), 'two');

  // A follow-up of the follow-up, by run id in the front matter, dropped in the base branch's folder.
  await v.root.dropPrompt('widget/main/add-c.prompt.md', `---\ntitle: Add c\nfollow_up: ${second.run_id}\n---\n# Do it\n\n\`\`\`sh\necho three > c.txt\n\`\`\`\n`);
  t.equal((await v.runOnce()).code, 0);
  const third = await newestRun(v);
  t.match(third, { state: 'done', agent_branch: branch, outcome: 'pr_commented', follow_up_of: second.run_id });
  const seenThird = requestsWith(v, 'echo three > c.txt');
  t.ok(seenThird.length > 0 && seenThird.every((text) => text.includes('echo one > a.txt') && text.includes('echo two > b.txt')),
    'the model saw both earlier prompts');
  t.equal(v.github.pullRequests.length, 1, 'still one PR');
  t.equal(pr.comments.length, 2, 'a second comment');
  t.same((await log()).slice(0, 3), [third.run_id, second.run_id, first.run_id]);
  t.equal(await show('c.txt'), 'three');

  // And by the PR's URL: the newest run of the PR goes on.
  await v.root.dropPrompt('widget/main/add-d.prompt.md', `---\nfollow_up: ${pr.url}\n---\n# Do it\n\n\`\`\`sh\necho four > d.txt\n\`\`\`\n`);
  t.equal((await v.runOnce()).code, 0);
  const fourth = await newestRun(v);
  t.match(fourth, { state: 'done', agent_branch: branch, outcome: 'pr_commented', follow_up_of: third.run_id });
  t.ok(requestsWith(v, 'echo four > d.txt').every((text) => text.includes('echo three > c.txt')), 'resumed from the newest run');
  t.equal(v.github.pullRequests.length, 1);
  t.equal(pr.comments.length, 3);
  t.equal(await show('d.txt'), 'four');

  // A follow-up that changes nothing still answers on the PR.
  await v.root.dropPrompt(`${folder}/question.prompt.md`, v.prompt(undefined, 'Why d'));
  t.equal((await v.runOnce()).code, 0);
  t.match(await newestRun(v), { state: 'done', outcome: 'no_changes', pr_url: pr.url });
  t.equal(pr.comments.length, 4, 'the answer is a comment');
  t.match(pr.comments[3]!.body, /Follow-up:\*\* Why d[\s\S]*Nothing to do/);
  t.equal(v.github.pullRequests.length, 1);
});

t.test('follow_up refused: a PR this valet did not open, an unknown run, a run of another repository', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget', 'gadget'] });
  t.teardown(() => v.close());
  await v.root.dropPrompt('gadget/main/g.prompt.md', v.prompt('echo g > g.txt'));
  t.equal((await v.runOnce()).code, 0);
  const gadgetRun = (await newestRun(v)).run_id;

  const foreign = v.github.seedPullRequest({ owner: 'acme', repo: 'widget', head: 'someone/else' });
  const cases = {
    'by-pr': { follow_up: foreign.url, code: 'follow_up_unknown_pr', says: new RegExp(`${foreign.url.replace(/[.]/g, '\\.')}.*not one this valet created`) },
    'by-run': { follow_up: '20200101-000000-000-aaaaaaaa', code: 'follow_up_unknown_run', says: /20200101-000000-000-aaaaaaaa: this valet has no such run/ },
    'other-repo': { follow_up: gadgetRun, code: 'follow_up_other_repo', says: /is work on acme\/gadget, but the prompt lies in the folder of acme\/widget/ },
  };
  for (const [name, c] of Object.entries(cases)) {
    await v.root.dropPrompt(`widget/main/${name}.prompt.md`, `---\nfollow_up: ${c.follow_up}\n---\n# Go on\n\n\`\`\`sh\necho x > x.txt\n\`\`\`\n`);
  }
  t.equal((await v.runOnce()).code, 0);
  await v.waitForFinished(4);
  for (const [name, c] of Object.entries(cases)) {
    const reason = fs.readFileSync(path.join(v.root.finished, 'widget/main', `${name}.error.txt`), 'utf8');
    t.match(reason, c.code, `${name}: the reason names the code`);
    t.match(reason, c.says, `${name}: the reason says why`);
  }
  t.equal(v.github.pullRequests.length, 1, 'only the gadget run opened a PR');
  t.equal(foreign.comments.length, 0, 'the foreign PR was not touched');
});
