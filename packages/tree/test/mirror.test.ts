import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { git } from '@prompt-valet/core';
import { cloneInto, makeOrigin } from '@prompt-valet/testkit';
import { actionsOf, inboxListing, treeFixture } from './fixtures/tree-fixture.js';

t.test('a remote with main and feature gets exactly those folders; a second run does nothing', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main', 'feature']);
  const first = await f.tree();
  t.equal(first.code, 0, first.stderr);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/feature/', 'widget/main/']);
  t.same(actionsOf(first.actions, f.v.inbox), [['created', 'widget'], ['created', 'widget/feature'], ['created', 'widget/main']]);
  t.match(first.actions[1], { v: 1, repo: 'acme/widget', branch: 'feature' });
  t.match(first.summary, { created: 3, repos: 1, branches: 2, failed: 0 });

  const second = await f.tree();
  t.equal(second.code, 0);
  t.same(second.actions, [], 'the second run performs no action');
  t.match(second.summary, { created: 0, removed: 0, marked: 0, unmarked: 0, skipped: 0, failed: 0, repos: 1, branches: 2 });
  t.equal(second.records.length, 1, 'only the summary line');
});

t.test('a remote with no heads keeps the repo root and makes no branch folder', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'empty', []);
  const r0 = await f.tree();
  t.equal(r0.code, 0, r0.stderr);
  t.same(await inboxListing(f.v.inbox), [], 'no folder for a repository without branches (eager_repos off)');
  await fsp.mkdir(path.join(f.v.inbox, 'empty'));
  const r1 = await f.tree();
  t.same(r1.actions, []);
  t.same(await inboxListing(f.v.inbox), ['empty/'], 'an existing repo root is kept');
});

t.test('eager_repos creates the repo root even without branch folders', async (t) => {
  const f = await treeFixture(t, { tree_builder: { eager_repos: true } });
  await f.addRepo('acme', 'empty', []);
  await f.addRepo('acme', 'widget', ['main']);
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['empty/', 'widget/', 'widget/main/']);
  t.match(r.actions[0], { action: 'created', repo: 'acme/empty', reason: /eager_repos/ });
});

t.test('a branch named feature/x is the single folder feature~x', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main', 'feature/x', 'team/a/b']);
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/feature~x/', 'widget/main/', 'widget/team~a~b/']);
  t.ok(r.actions.some((a) => a.branch === 'feature/x' && String(a.path).endsWith('feature~x')));
});

t.test('HEAD never becomes a folder, even as a real branch upstream', async (t) => {
  const f = await treeFixture(t);
  const bare = await f.addRepo('acme', 'widget', ['main']);
  const sha = (await git(['rev-parse', 'refs/heads/main'], { cwd: bare })).stdout.trim();
  await git(['update-ref', 'refs/heads/HEAD', sha], { cwd: bare });
  const listed = (await git(['ls-remote', '--heads', 'origin'], { cwd: path.join(f.v.repos, 'acme', 'widget') })).stdout;
  t.match(listed, /refs\/heads\/HEAD/, 'the remote really offers a branch named HEAD');
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/']);
});

t.test('branch_mode: all, whitelist, blacklist, both (exact names and * globs)', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main', 'wip', 'feature/a', 'release/1', 'release/2']);
  const folders = async () => (await inboxListing(f.v.inbox)).filter((p) => p.split('/').length === 3).map((p) => p.split('/')[1]);

  await f.tree();
  t.same(await folders(), ['feature~a', 'main', 'release~1', 'release~2', 'wip'], 'all');

  await f.v.configure({ tree_builder: { branch_mode: 'whitelist', branch_whitelist: ['main', 'release/*'] } });
  const w = await f.tree();
  t.same(await folders(), ['main', 'release~1', 'release~2'], 'whitelist: exact name and glob');
  t.same(actionsOf(w.actions, f.v.inbox), [['removed', 'widget/feature~a'], ['removed', 'widget/wip']], 'filtered-out empty folders are removed');
  t.match(w.actions[0], { reason: /not in tree_builder.branch_whitelist/ });

  await f.v.configure({ tree_builder: { branch_mode: 'blacklist', branch_blacklist: ['release/*', 'wi'] } });
  await f.tree();
  t.same(await folders(), ['feature~a', 'main', 'wip'], 'blacklist: "wi" has no * so it matches only the branch "wi"');

  await f.v.configure({ tree_builder: { branch_mode: 'both', branch_whitelist: ['main', 'release/*', 'wip'], branch_blacklist: ['release/2'] } });
  await f.tree();
  t.same(await folders(), ['main', 'release~1', 'wip'], 'both: whitelist, then blacklist');

  await f.v.configure({ tree_builder: { branch_mode: 'all', branch_name_blacklist: ['HEAD', 'w*'] } });
  await f.tree();
  t.same(await folders(), ['feature~a', 'main', 'release~1', 'release~2'], 'branch_name_blacklist applies in every mode');
});

t.test('multi_owner mirrors every owner; legacy_single_owner only git_owner, without the owner level', async (t) => {
  const f = await treeFixture(t, { inbox_mode: 'multi_owner' });
  await f.addRepo('acme', 'widget', ['main']);
  await f.addRepo('other', 'gadget', ['dev']);
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['acme/', 'acme/widget/', 'acme/widget/main/', 'other/', 'other/gadget/', 'other/gadget/dev/']);

  const g = await treeFixture(t, { inbox_mode: 'legacy_single_owner', git_owner: 'acme' });
  await g.addRepo('acme', 'widget', ['main']);
  await g.addRepo('other', 'gadget', ['dev']);
  const s = await g.tree();
  t.equal(s.code, 0, s.stderr);
  t.same(await inboxListing(g.v.inbox), ['widget/', 'widget/main/']);
  t.equal(s.summary.repos, 1, 'the other owner is not looked at');
});

t.test('an invalid repository folder name gets an ERROR.md and no folders; nothing is deleted because of it', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main']);
  const bare = await makeOrigin(path.join(f.origins, 'acme', 'bad.git'), { branches: ['main'] });
  await cloneInto(`file://${bare}`, path.join(f.v.repos, 'acme', 'bad name'));
  await fsp.mkdir(path.join(f.v.inbox, 'bad name', 'main'), { recursive: true });
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['ERROR.md', 'bad name/', 'bad name/main/', 'widget/', 'widget/main/'], 'the empty folder of the invalid name stays');
  const note = await fsp.readFile(path.join(f.v.inbox, 'ERROR.md'), 'utf8');
  t.match(note, /`acme\/bad name`: repository name "bad name" may hold only/);
  t.match(r.actions.find((a) => a.action === 'marked'), { path: f.v.inbox });
  const again = await f.tree();
  t.same(again.actions, [], 'the note is not rewritten');

  await fsp.rename(path.join(f.v.repos, 'acme', 'bad name'), path.join(f.v.repos, 'acme', 'good'));
  const fixed = await f.tree();
  t.ok(fixed.actions.some((a) => a.action === 'unmarked' && a.path === f.v.inbox), 'the note goes once the name is fixed');
  t.notOk((await inboxListing(f.v.inbox)).includes('ERROR.md'));
});

t.test('dot-folders under repos_root and the inbox are valet state, not repositories', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main']);
  const bare = await makeOrigin(path.join(f.origins, 'acme', 'hidden.git'), { branches: ['main'] });
  await cloneInto(`file://${bare}`, path.join(f.v.repos, '.worktrees', 'hidden'));
  await cloneInto(`file://${bare}`, path.join(f.v.repos, 'acme', '.trash'));
  await fsp.mkdir(path.join(f.v.inbox, '.state', 'x'), { recursive: true });
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['.state/', '.state/x/', 'widget/', 'widget/main/']);
  t.equal(r.summary.repos, 1);
});
