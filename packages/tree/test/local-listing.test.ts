import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { git } from '@prompt-valet/core';
import { cloneInto, makeOrigin, runBin } from '@prompt-valet/testkit';
import { inboxListing, treeFixture, type TreeFixture } from './fixtures/tree-fixture.js';

/** pv-tree --once --verbose with extra environment (git's shared config comes in through GIT_CONFIG_*). */
async function treeWithEnv(f: TreeFixture, env: NodeJS.ProcessEnv = {}) {
  const r = await runBin('pv-tree', ['--once', '--verbose', '--config', f.v.configPath], { env, timeout: 60_000 });
  const last = r.records[r.records.length - 1] as { summary?: Record<string, unknown> } | undefined;
  return { ...r, summary: last?.summary ?? {} };
}

t.test('local origins (file:// and plain paths, bare and not) are read without git; the inbox is the same', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main', 'feature/x']);
  const plainBare = await makeOrigin(path.join(f.origins, 'acme', 'plain.git'), { branches: ['main', 'dev'] });
  await cloneInto(plainBare, path.join(f.v.repos, 'acme', 'plain'));
  // A non-bare origin: its branches are those of <path>/.git.
  const worktree = path.join(f.origins, 'acme', 'nonbare');
  await git(['clone', '--quiet', plainBare, worktree]);
  await git(['branch', 'topic'], { cwd: worktree });
  await cloneInto(`file://${worktree}`, path.join(f.v.repos, 'acme', 'nonbare'));

  const r = await treeWithEnv(f);
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), [
    'nonbare/', 'nonbare/main/', 'nonbare/topic/',
    'plain/', 'plain/dev/', 'plain/main/',
    'widget/', 'widget/feature~x/', 'widget/main/',
  ]);
  t.match(r.summary, { repos: 3, local_listings: 3, git_commands: 1 }, 'one git process: the shared config check');
  t.notMatch(r.stderr, /asking git/);
});

t.test('an insteadOf rule in git\'s shared config sends every repository to git, which applies it', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main']);
  // git rewrites the clone's origin to another repository with other branches; the files of the first must not answer.
  const elsewhere = await makeOrigin(path.join(f.origins, 'acme', 'elsewhere.git'), { branches: ['main', 'rewritten'] });
  const originUrl = `file://${path.join(f.origins, 'acme', 'widget.git')}`;
  const env = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `url.file://${elsewhere}.insteadOf`, GIT_CONFIG_VALUE_0: originUrl };
  const r = await treeWithEnv(f, env);
  t.equal(r.code, 0, r.stderr);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/', 'widget/rewritten/'], 'git\'s answer, through the rewrite');
  t.match(r.summary, { local_listings: 0, git_commands: 2 }, 'the config check and one ls-remote');
  t.match(r.stderr, /every origin is asked with git: git config has url\..*\.insteadof/);
});

t.test('an environment variable that moves git\'s repository or store sends every repository to git', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main']);
  const r = await treeWithEnv(f, { GIT_NAMESPACE: 'team' });
  t.equal(r.code, 0, r.stderr);
  t.match(r.summary, { local_listings: 0, git_commands: 1 }, 'no config check needed: nothing is read in-process');
  t.match(r.stderr, /every origin is asked with git: GIT_NAMESPACE is set/);
});

t.test('each clone or origin that is not plain is asked with git, and only that one', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'plain', ['main']);
  const cases: { repo: string; reason: RegExp }[] = [];

  // The clone's config: an insteadOf rule of its own, two URLs, an include.
  const rewrite = await f.addRepo('acme', 'rewrite', ['main']);
  await git(['config', `url.file://${rewrite}.insteadOf`, 'file:///nowhere'], { cwd: path.join(f.v.repos, 'acme', 'rewrite') });
  cases.push({ repo: 'rewrite', reason: /url\..*\.insteadof/ });
  await f.addRepo('acme', 'twourls', ['main']);
  await git(['config', '--add', 'remote.origin.url', '/nowhere'], { cwd: path.join(f.v.repos, 'acme', 'twourls') });
  cases.push({ repo: 'twourls', reason: /2 remote\.origin\.url values/ });
  await f.addRepo('acme', 'included', ['main']);
  await git(['config', 'include.path', '/dev/null'], { cwd: path.join(f.v.repos, 'acme', 'included') });
  cases.push({ repo: 'included', reason: /includes other files/ });

  // The origin: hidden refs (git hides dev), a symbolic ref, packed-refs gone bad, another owner.
  const hidden = await f.addRepo('acme', 'hidden', ['main', 'dev']);
  await git(['config', 'uploadpack.hideRefs', 'refs/heads/dev'], { cwd: hidden });
  cases.push({ repo: 'hidden', reason: /hiderefs is set/ });
  const symbolic = await f.addRepo('acme', 'symbolic', ['main']);
  await git(['symbolic-ref', 'refs/heads/alias', 'refs/heads/main'], { cwd: symbolic });
  cases.push({ repo: 'symbolic', reason: /symbolic ref/ });
  const owned = await f.addRepo('acme', 'owned', ['main']);
  await fsp.chown(owned, 65534, 65534);
  cases.push({ repo: 'owned', reason: /owned by uid 65534/ });

  const reftable = await f.addRepo('acme', 'reftable', ['main']);
  await git(['config', 'core.repositoryformatversion', '1'], { cwd: reftable });
  await git(['config', 'extensions.refStorage', 'reftable'], { cwd: reftable });
  cases.push({ repo: 'reftable', reason: /extensions\.refstorage/ });
  const badPacked = await f.addRepo('acme', 'badpacked', ['main']);
  await git(['pack-refs', '--all'], { cwd: badPacked });
  await fsp.appendFile(path.join(badPacked, 'packed-refs'), 'garbage\n');
  cases.push({ repo: 'badpacked', reason: /packed-refs line \d+ is malformed/ });
  // A non-bare origin whose .git is a file pointing at the repository: git follows it.
  const pointed = await makeOrigin(path.join(f.origins, 'acme', 'pointed.git'), { branches: ['main', 'via-pointer'] });
  const pointer = path.join(f.origins, 'acme', 'pointer');
  await fsp.mkdir(pointer);
  await fsp.writeFile(path.join(pointer, '.git'), `gitdir: ${pointed}\n`);
  await cloneInto(pointer, path.join(f.v.repos, 'acme', 'pointer'));
  cases.push({ repo: 'pointer', reason: /gitdir pointer/ });

  const r = await treeWithEnv(f);
  t.equal(r.code, 0, r.stderr);
  for (const c of cases) t.match(r.stderr, new RegExp(`acme/${c.repo}: asking git \\(.*${c.reason.source}`), c.repo);
  t.match(r.summary, { repos: 10, local_listings: 1, git_commands: 1 + cases.length });
  const listing = await inboxListing(f.v.inbox);
  t.ok(listing.includes('hidden/main/') && !listing.includes('hidden/dev/'), 'git hid dev, so it has no folder');
  t.ok(listing.includes('symbolic/alias/') && listing.includes('symbolic/main/'), 'git lists the symbolic ref as a branch');
  t.ok(listing.includes('rewrite/main/') && listing.includes('twourls/main/') && listing.includes('included/main/'));
  t.ok(listing.includes('pointer/via-pointer/'), 'git followed the .git file');
  const failed = (repo: string) => r.records.find((x) => 'action' in x && x.repo === `acme/${repo}`);
  t.match(failed('owned'), { action: 'failed', reason: /dubious ownership/ }, 'git\'s own refusal');
  t.match(failed('reftable'), { action: 'failed', reason: /unknown repository extension/ }, 'git\'s own refusal');
  t.match(failed('badpacked'), { action: 'failed', reason: /packed-refs/ }, 'git\'s own refusal');
});

t.test('an https origin is asked with git as before; no config check when no origin is local', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main']);
  await fsp.mkdir(path.join(f.v.inbox, 'widget', 'main'), { recursive: true });
  await git(['remote', 'set-url', 'origin', 'https://127.0.0.1:9/acme/widget.git'], { cwd: path.join(f.v.repos, 'acme', 'widget') });
  const r = await treeWithEnv(f);
  t.equal(r.code, 0, r.stderr);
  t.match(r.summary, { local_listings: 0, git_commands: 1, failed: 1 });
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/'], 'a failed listing leaves the folders alone');
});
