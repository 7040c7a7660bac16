import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, RUN_FILES, type PvRecord } from '@prompt-valet/core';
import { originBranches, waitFor, writeHangingWrapper } from '@prompt-valet/testkit';
import { killGroup, setup, type Test } from './fixtures/setup.js';

const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);
const progressOf = async (rec: PvRecord) =>
  JSON.parse(await fsp.readFile(path.join(rec.claim!.run_root, RUN_FILES.publish), 'utf8')) as { outcome: string; commit?: string };

/** Commits on the agent branch upstream that are not on main: one per run, whatever happened. */
async function agentCommits(bare: string, branch: string): Promise<string[]> {
  const out = (await git(['log', '--format=%H %(trailers:key=Prompt-Valet-Run,valueonly,separator=)', `refs/heads/${branch}`, '^refs/heads/main', '--'], { cwd: bare })).stdout;
  return out.split('\n').filter(Boolean);
}

t.test('publishing the same record twice pushes once and opens one PR', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'twice.txt': 'x\n' });
  const first = await publish([rec]);
  t.match(first.records[0]!.publish, { outcome: 'pr_opened' }, first.stderr);
  const second = await publish([rec]);
  t.same(second.records[0]!.publish, first.records[0]!.publish, 'the second run re-emits what the first recorded');
  t.equal(gh.pullRequests.length, 1, 'one PR');
  const commits = await agentCommits(bare, rec.target!.agent_branch);
  t.equal(commits.length, 1, 'one commit on the agent branch');
  t.match(commits[0], rec.run_id!, 'it carries the trailer Prompt-Valet-Run: <run id>');
});

interface KillPoint {
  name: string;
  /** the program to wrap, the argument that makes it hang, and whether the real one runs first */
  program: 'git' | 'gh';
  verb: string;
  when: 'before' | 'after';
  /** publish.json's outcome once killed there */
  recorded: string;
  /** the branch is on origin when killed */
  pushed: boolean;
  /** a PR exists when killed */
  prs: number;
}

const KILL_POINTS: KillPoint[] = [
  { name: 'after the commit, before the push', program: 'git', verb: 'push', when: 'before', recorded: 'pushing', pushed: false, prs: 0 },
  { name: 'after the push landed, before publish.json said so', program: 'git', verb: 'push', when: 'after', recorded: 'pushing', pushed: true, prs: 0 },
  { name: 'after the push, before the PR was made', program: 'gh', verb: 'create', when: 'before', recorded: 'pushed', pushed: true, prs: 0 },
  { name: 'after the PR was made, before publish.json said so', program: 'gh', verb: 'create', when: 'after', recorded: 'pushed', pushed: true, prs: 1 },
];

for (const k of KILL_POINTS) {
  t.test(`pv-publish SIGKILLed ${k.name}: the rerun gives one commit, one branch, one PR`, async (t: Test) => {
    const { root, bare, gh, cloned, publish, spawnPublish } = await setup(t);
    const bin = path.join(root.root, 'wrap-bin');
    const marker = path.join(root.root, 'hanging');
    const wrapper = await writeHangingWrapper({ dir: bin, name: k.program, real: `/usr/bin/${k.program}`, pattern: k.verb, when: k.when, marker });
    const rec = await cloned(bare, { 'crash.txt': 'survives\n' });

    if (k.program === 'gh') await root.configure({ watcher: { gh_cmd: wrapper } });
    const child = spawnPublish([rec], k.program === 'git' ? { PATH: `${bin}:${process.env.PATH}` } : {});
    await waitFor(`pv-publish to reach ${k.name}`, () => exists(marker), 60_000);
    killGroup(child);
    await new Promise((resolve) => child.once('exit', resolve));

    t.equal((await progressOf(rec)).outcome, k.recorded, `publish.json says ${k.recorded} when killed`);
    t.equal((await originBranches(bare)).has(rec.target!.agent_branch), k.pushed, k.pushed ? 'the push had landed' : 'nothing was pushed yet');
    t.equal(gh.pullRequests.length, k.prs);

    if (k.program === 'gh') await root.configure({ watcher: { gh_cmd: 'gh' } });
    const r = await publish([rec]);
    const out = r.records[0]!;
    t.notOk(out.error, JSON.stringify(out.error) + r.stderr);
    t.match(out.publish, { outcome: k.prs === 1 ? 'pr_exists' : 'pr_opened' });
    const commits = await agentCommits(bare, rec.target!.agent_branch);
    t.equal(commits.length, 1, 'one commit on the agent branch, made before the kill');
    t.equal(out.publish!.commit, commits[0]!.split(' ')[0]);
    t.equal(gh.pullRequests.length, 1, 'one PR');
    const files = (await git(['show', '--name-only', '--format=', out.publish!.commit!], { cwd: bare })).stdout;
    t.match(files, 'crash.txt', 'the agent\'s work is in it');
    t.notOk(await exists(rec.checkout!.dir), 'the worktree is removed once published');
  });
}

t.test('a run resumed without publish.json finds its own commit on origin by the trailer and does not commit again', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t, { publisher: 'none' });
  const rec = await cloned(bare, { 'elsewhere.txt': 'x\n' });
  const first = await publish([rec]);
  const pushed = first.records[0]!.publish!.commit!;
  // another host resumes the run: none of this run folder's progress, and no checkout
  await fsp.rm(path.join(rec.claim!.run_root, RUN_FILES.publish));
  t.notOk(await exists(rec.checkout!.dir), 'the first publish removed the checkout');
  const again = await publish([rec]);
  t.notOk(again.records[0]!.error, JSON.stringify(again.records[0]!.error));
  t.equal(again.records[0]!.publish!.commit, pushed, 'the commit found on origin is this run\'s');
  t.equal((await agentCommits(bare, rec.target!.agent_branch)).length, 1, 'no second commit');
  t.equal(gh.requests.length, 0);
});

t.test('someone else\'s commit on the agent branch is never overwritten', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'mine.txt': 'x\n' });
  // a person pushes to the agent branch first
  const main = (await originBranches(bare)).get('main')!;
  await git(['update-ref', `refs/heads/${rec.target!.agent_branch}`, main], { cwd: bare });
  const r = await publish([rec]);
  t.match(r.records[0]!.error, { step: 'publish', code: 'push_rejected' });
  t.equal((await originBranches(bare)).get(rec.target!.agent_branch), main, 'their branch is untouched');
  t.equal(gh.pullRequests.length, 0);
});
