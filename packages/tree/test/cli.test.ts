import { execa } from 'execa';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { binPath, waitFor } from '@prompt-valet/testkit';
import { inboxListing, treeFixture } from './fixtures/tree-fixture.js';

t.test('--help prints the usage and the policy on stdout', async (t) => {
  const r = await execa(process.execPath, [binPath('pv-tree'), '--help'], { reject: false, timeout: 60_000, env: { NO_COLOR: '1' } });
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /pv-tree \[--once\] \[--dry-run\]/);
  t.match(r.stdout, /branch_mode/);
  t.match(r.stdout, /feature~x/);
});

t.test('--dry-run prints the actions and changes nothing', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main', 'feature']);
  const r = await f.tree('--dry-run');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.actions.length, 3);
  t.ok(r.actions.every((a) => a.action === 'created' && a.dry_run === true));
  t.match(r.summary, { created: 3, dry_run: true });
  t.same(await inboxListing(f.v.inbox), []);
});

t.test('legacy_single_owner without git_owner is a configuration error (78)', async (t) => {
  const f = await treeFixture(t, { git_owner: '' });
  const r = await f.tree();
  t.equal(r.code, 78);
  t.match(r.stderr, /legacy_single_owner needs git_owner/);
  t.equal(r.stdout, '');
});

t.test('a missing repos_root is never read as "no repositories" (78, nothing touched)', async (t) => {
  const f = await treeFixture(t);
  await fsp.mkdir(path.join(f.v.inbox, 'widget', 'main'), { recursive: true });
  await fsp.rm(f.v.repos, { recursive: true });
  const r = await f.tree();
  t.equal(r.code, 78);
  t.match(r.stderr, /repos_root .* does not exist/);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/']);
});

t.test('without --once it keeps passing every scan_interval_seconds and ends cleanly on SIGTERM', async (t) => {
  const f = await treeFixture(t, { tree_builder: { scan_interval_seconds: 1 } });
  await f.addRepo('acme', 'widget', ['main']);
  const child = execa(process.execPath, [binPath('pv-tree'), '--config', f.v.configPath], { reject: false, timeout: 60_000, env: { NO_COLOR: '1' } });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await waitFor('the first pass', async () => (await inboxListing(f.v.inbox)).includes('widget/main/'));
  await f.addRepo('acme', 'later', ['dev']);
  await waitFor('a later pass', async () => (await inboxListing(f.v.inbox)).includes('later/dev/'));
  child.kill('SIGTERM');
  const r = await child;
  t.equal(r.exitCode, 0, String(r.stderr));
  const summaries = String(r.stdout).split('\n').filter((l) => l.includes('"summary"'));
  t.ok(summaries.length >= 2, 'one summary line per pass');
});
