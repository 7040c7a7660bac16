import t, { type Test } from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, markStepDone, type PvRecord } from '@prompt-valet/core';
import { commitToOrigin, makeOrigin, makeRunRecord, makeValetRoot, runBin, type ValetRoot } from '@prompt-valet/testkit';

async function setup(t: Test) {
  const root: ValetRoot = await makeValetRoot({}, 'pv-clone-resume-');
  t.teardown(() => root.cleanup());
  const bare = await makeOrigin(path.join(root.root, 'origins', 'acme', 'widget.git'), { branches: ['main'] });
  const record = () => makeRunRecord({ processed: root.processed, reposRoot: root.repos, cloneUrl: bare });
  const clone = (input: PvRecord[]) =>
    runBin('pv-clone', ['--config', root.configPath], { input, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  return { root, bare, record, clone };
}

const head = async (dir: string) => (await git(['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim();
const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);
const trashOf = (root: ValetRoot) => path.join(root.repos, '.trash', 'worktrees', 'acme', 'widget');


t.test('resumed after the agent finished: the checkout with its work is reused untouched', async (t) => {
  const { root, bare, record, clone } = await setup(t);
  const rec = await record();
  const first = (await clone([rec])).records[0]!;
  const dir = first.checkout!.dir;
  await fsp.writeFile(path.join(dir, 'agent-work.txt'), 'done by the agent\n');
  await markStepDone(rec.claim!.run_root, 'run-codex', { exit_code: 0 });
  await commitToOrigin(bare, 'main', { 'later.txt': 'origin moved on\n' });

  const again = (await clone([rec])).records[0]!;
  t.notOk(again.error, JSON.stringify(again.error));
  t.equal(again.checkout!.dir, dir);
  t.equal(again.checkout!.base_sha, first.checkout!.base_sha, 'the recorded base');
  t.equal(await fsp.readFile(path.join(dir, 'agent-work.txt'), 'utf8'), 'done by the agent\n', 'the work is still there');
  t.equal(await head(dir), first.checkout!.base_sha, 'not reset to the newer origin/main');
  t.notOk(await exists(trashOf(root)), 'nothing set aside');
});

t.test('resumed before the agent finished: the old checkout is set aside, a fresh one made at the recorded base', async (t) => {
  const { root, bare, record, clone } = await setup(t);
  const rec = await record();
  const first = (await clone([rec])).records[0]!;
  await fsp.writeFile(path.join(first.checkout!.dir, 'half-done.txt'), 'partial\n');
  const newer = await commitToOrigin(bare, 'main', { 'later.txt': 'origin moved on\n' });
  // the shared clone's own checkouts may run its hooks; the run's checkout (where agents work) never does
  const hookRan = path.join(root.root, 'post-checkout-ran');
  await fsp.writeFile(path.join(rec.target!.repo_dir, '.git', 'hooks', 'post-checkout'), `#!/bin/sh\npwd >> '${hookRan}'\n`, { mode: 0o755 });

  const again = (await clone([rec])).records[0]!;
  t.notOk(again.error, JSON.stringify(again.error));
  const ranIn = (await fsp.readFile(hookRan, 'utf8').catch(() => '')).split('\n');
  t.notOk(ranIn.includes(again.checkout!.dir), 'no hook of the shared clone ran in the run\'s checkout');
  t.equal(again.checkout!.dir, first.checkout!.dir);
  t.equal(again.checkout!.base_sha, first.checkout!.base_sha, 'every try of a run starts from the same commit');
  t.not(again.checkout!.base_sha, newer);
  t.equal(await head(again.checkout!.dir), first.checkout!.base_sha);
  t.notOk(await exists(path.join(again.checkout!.dir, 'half-done.txt')), 'a fresh checkout');
  const [moved] = await fsp.readdir(trashOf(root));
  t.equal(await fsp.readFile(path.join(trashOf(root), moved!, 'half-done.txt'), 'utf8'), 'partial\n', 'the partial work is kept in the trash, not deleted');
});

t.test('forged records naming places outside the valet fail with foreign_path before git runs', async (t) => {
  const { root, record, clone } = await setup(t);
  const rec = await record();
  const elsewhere = path.join(root.root, 'elsewhere');
  const r = await clone([
    { ...rec, claim: { ...rec.claim!, run_root: elsewhere } },
    { ...rec, checkout: { dir: elsewhere, base_sha: '0'.repeat(40), branch: rec.target!.agent_branch, repo: 'existing', reused_branch: false } },
  ]);
  t.equal(r.records.length, 2);
  for (const out of r.records) t.match(out.error, { step: 'clone', code: 'foreign_path', retryable: false });
  t.notOk(await exists(elsewhere), 'nothing made there');
  t.notOk(await exists(path.join(root.repos, 'acme', 'widget')), 'no clone made for a forged record');
});
