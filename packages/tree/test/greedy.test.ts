import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { makeOrigin, runBin, startFakeGitHub, type FakeGitHub } from '@prompt-valet/testkit';
import { inboxListing, inboxSnapshot, treeFixture, type TreeFixture } from './fixtures/tree-fixture.js';

/** pv-tree --once with the real gh talking to the fake GitHub. */
async function treeWithGh(f: TreeFixture, gh: FakeGitHub) {
  const r = await runBin('pv-tree', ['--once', '--config', f.v.configPath], { env: gh.ghEnv(), timeout: 60_000 });
  const actions = r.records.filter((x) => 'action' in x) as Record<string, unknown>[];
  const last = r.records[r.records.length - 1] as { summary?: Record<string, unknown> } | undefined;
  return { ...r, actions, summary: last?.summary ?? {} };
}

async function fakeGitHub(t: Test, f: TreeFixture, maxPageSize?: number): Promise<FakeGitHub> {
  const gh = await startFakeGitHub({ dir: path.join(f.v.root, 'gh'), ...(maxPageSize ? { maxPageSize } : {}) });
  t.teardown(() => gh.close());
  return gh;
}

t.test('greedy_inboxes: every non-archived repository upstream gets its folders before any clone', async (t) => {
  const f = await treeFixture(t, { tree_builder: { greedy_inboxes: true } });
  const gh = await fakeGitHub(t, f, 2);
  await f.addRepo('acme', 'widget', ['main']);
  await makeOrigin(path.join(f.origins, 'acme', 'gadget.git'), { branches: ['main', 'feature/x'] });
  await makeOrigin(path.join(f.origins, 'acme', 'attic.git'), { branches: ['main'] });
  await makeOrigin(path.join(f.origins, 'acme', 'solo.git'), { branches: ['dev'] });
  for (const [name, archived] of [['widget', false], ['gadget', false], ['attic', true], ['solo', false], ['gone', false]] as const) {
    gh.addRepository({ owner: 'acme', name, archived });
  }
  gh.addRepository({ owner: 'other', name: 'elsewhere' });
  await fsp.mkdir(path.join(f.v.inbox, 'ghost'));

  const r = await treeWithGh(f, gh);
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['gadget/', 'gadget/feature~x/', 'gadget/main/', 'solo/', 'solo/dev/', 'widget/', 'widget/main/'],
    'the clone, the two upstream-only repositories; not the archived one, not another owner; the stale ghost/ removed');
  t.same(await fsp.readdir(path.join(f.v.repos, 'acme')), ['widget'], 'nothing was cloned');
  const gone = r.actions.find((a) => a.repo === 'acme/gone');
  t.match(gone, { action: 'failed', reason: /cannot list the branches of acme\/gone upstream \(not cloned; inbox folders left as they are\)/ }, 'a repository whose URL does not answer is a failed line');
  // The clone and the two upstream-only repositories have local origins (git_protocol file): read in-process.
  // git: the shared config check, and ls-remote for gone (its folder is missing, so git gives the error).
  t.match(r.summary, { upstream_repos: 3, gh_commands: 1, git_commands: 2, local_listings: 3, failed: 1 });
  const pages = gh.requests.filter((q) => q.operation === 'RepositoryList');
  t.equal(pages.length, 3, 'gh paged through five repositories two at a time');
  t.same(pages.map((p) => p.variables.owner), ['acme', 'acme', 'acme']);

  const again = await treeWithGh(f, gh);
  t.same(again.actions.map((a) => a.action), ['failed'], 'the second pass changes nothing (gone still fails)');
});

t.test('greedy_inboxes: a failed discovery changes nothing', async (t) => {
  const f = await treeFixture(t, { tree_builder: { greedy_inboxes: true } });
  const gh = await fakeGitHub(t, f);
  await f.addRepo('acme', 'widget', ['main']);
  await makeOrigin(path.join(f.origins, 'acme', 'gadget.git'), { branches: ['main'] });
  gh.addRepository({ owner: 'acme', name: 'widget' });
  gh.addRepository({ owner: 'acme', name: 'gadget' });
  t.equal((await treeWithGh(f, gh)).code, 0);
  await fsp.writeFile(path.join(f.v.inbox, 'gadget', 'main', 'a.prompt.md'), 'a prompt');
  await fsp.mkdir(path.join(f.v.inbox, 'gadget', 'empty-old'));
  await fsp.mkdir(path.join(f.v.inbox, 'ghost'));
  const before = await inboxSnapshot(f.v.inbox);

  gh.failNext('RepositoryList', 502, 'upstream is down');
  const r = await treeWithGh(f, gh);
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxSnapshot(f.v.inbox), before, 'no folder created, removed or marked');
  t.match(r.actions, [{ action: 'failed', path: f.v.inbox, reason: /cannot list the repositories of acme upstream \(inbox folders left as they are\): gh repo list acme: / }]);
  t.equal(r.actions.length, 1);
});

t.test('greedy_inboxes off (the default): gh is never asked', async (t) => {
  const f = await treeFixture(t);
  const gh = await fakeGitHub(t, f);
  await f.addRepo('acme', 'widget', ['main']);
  await makeOrigin(path.join(f.origins, 'acme', 'gadget.git'), { branches: ['main'] });
  gh.addRepository({ owner: 'acme', name: 'gadget' });
  const r = await treeWithGh(f, gh);
  t.equal(r.code, 0, r.stderr);
  t.same(gh.requests, [], 'no API call');
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/']);
  t.match(r.summary, { gh_commands: 0, upstream_repos: 0 });
});

t.test('greedy_inboxes in multi_owner mode asks each owner under repos_root', async (t) => {
  const f = await treeFixture(t, { inbox_mode: 'multi_owner', git_owner: '', tree_builder: { greedy_inboxes: true } });
  const gh = await fakeGitHub(t, f);
  await f.addRepo('acme', 'widget', ['main']);
  await f.addRepo('beta', 'tool', ['main']);
  await makeOrigin(path.join(f.origins, 'beta', 'extra.git'), { branches: ['main'] });
  gh.addRepository({ owner: 'beta', name: 'extra' });
  const r = await treeWithGh(f, gh);
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['acme/', 'acme/widget/', 'acme/widget/main/', 'beta/', 'beta/extra/', 'beta/extra/main/', 'beta/tool/', 'beta/tool/main/']);
  t.same(gh.requests.filter((q) => q.operation === 'RepositoryList').map((q) => q.variables.owner).sort(), ['acme', 'beta']);
});

t.test('mirror_agent_branches: codex/x is codex~x by default; false removes the empty folder', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main', 'codex/fix-1']);
  t.equal((await f.tree()).code, 0);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/codex~fix-1/', 'widget/main/']);
  await f.v.configure({ tree_builder: { mirror_agent_branches: false } });
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/']);
  t.match(r.actions, [{ action: 'removed', branch: 'codex/fix-1', reason: /mirror_agent_branches is false/ }]);
});
