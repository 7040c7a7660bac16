import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { commitToOrigin, deleteOriginBranch } from '@prompt-valet/testkit';
import { actionsOf, inboxListing, inboxSnapshot, treeFixture } from './fixtures/tree-fixture.js';

t.test('a branch deleted upstream: an empty folder goes, a folder with a prompt stays with an ERROR.md that points to it', async (t) => {
  const f = await treeFixture(t);
  const bare = await f.addRepo('acme', 'widget', ['main', 'feature', 'old']);
  await f.tree();
  const prompt = await f.v.dropPrompt('widget/feature/fix-it.prompt.md', '# Fix it\n');
  await fsp.mkdir(path.join(f.v.inbox, 'widget', 'old', 'empty-sub'));
  await deleteOriginBranch(bare, 'feature');
  await deleteOriginBranch(bare, 'old');

  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(actionsOf(r.actions, f.v.inbox), [['marked', 'widget/feature'], ['removed', 'widget/old']]);
  t.match(r.actions[0], { repo: 'acme/widget', branch: 'feature', reason: /does not exist on origin/, note: path.join(f.v.inbox, 'widget', 'feature', 'ERROR.md') });
  t.equal(await fsp.readFile(prompt, 'utf8'), '# Fix it\n', 'the prompt survives untouched');
  const note = await fsp.readFile(path.join(f.v.inbox, 'widget', 'feature', 'ERROR.md'), 'utf8');
  t.match(note, /no branch `feature` on origin/);
  t.match(note, /- `fix-it\.prompt\.md`/, 'the note lists the prompt');
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/feature/', 'widget/feature/ERROR.md', 'widget/feature/fix-it.prompt.md', 'widget/main/']);

  const again = await f.tree();
  t.same(again.actions, [], 'marking is idempotent: the note is not rewritten');

  // The operator adds a file: the note follows what is there.
  await fsp.writeFile(path.join(f.v.inbox, 'widget', 'feature', 'notes.txt'), 'mine');
  const more = await f.tree();
  t.same(actionsOf(more.actions, f.v.inbox), [['marked', 'widget/feature']]);
  t.match(await fsp.readFile(path.join(f.v.inbox, 'widget', 'feature', 'ERROR.md'), 'utf8'), /notes\.txt/);

  // The operator takes the files away: only pv-tree's note is left, so the folder goes.
  await fsp.rm(prompt);
  await fsp.rm(path.join(f.v.inbox, 'widget', 'feature', 'notes.txt'));
  const gone = await f.tree();
  t.same(actionsOf(gone.actions, f.v.inbox), [['removed', 'widget/feature']]);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/main/']);
});

t.test('a branch that comes back: pv-tree removes its own note and keeps the prompt', async (t) => {
  const f = await treeFixture(t);
  const bare = await f.addRepo('acme', 'widget', ['main', 'feature']);
  await f.tree();
  await f.v.dropPrompt('widget/feature/a.prompt.md', 'a');
  await deleteOriginBranch(bare, 'feature');
  t.same(actionsOf((await f.tree()).actions, f.v.inbox), [['marked', 'widget/feature']]);
  await commitToOrigin(bare, 'feature', { 'b.txt': 'b' }, 'main');
  const back = await f.tree();
  t.same(actionsOf(back.actions, f.v.inbox), [['unmarked', 'widget/feature']]);
  t.same(await inboxListing(f.v.inbox), ['widget/', 'widget/feature/', 'widget/feature/a.prompt.md', 'widget/main/']);
});

t.test('an operator ERROR.md is operator content: never removed or replaced', async (t) => {
  const f = await treeFixture(t);
  const bare = await f.addRepo('acme', 'widget', ['main', 'feature']);
  await f.tree();
  await fsp.writeFile(path.join(f.v.inbox, 'widget', 'feature', 'ERROR.md'), 'my own notes');
  await deleteOriginBranch(bare, 'feature');
  const r = await f.tree();
  t.same(actionsOf(r.actions, f.v.inbox), [['skipped', 'widget/feature']]);
  t.equal(await fsp.readFile(path.join(f.v.inbox, 'widget', 'feature', 'ERROR.md'), 'utf8'), 'my own notes');
});

t.test('a stale folder with a running prompt is left alone entirely and reported', async (t) => {
  const f = await treeFixture(t);
  const bare = await f.addRepo('acme', 'widget', ['main', 'feature']);
  await f.tree();
  await f.v.dropPrompt('widget/feature/sub/job.running.md', 'running');
  await deleteOriginBranch(bare, 'feature');
  const before = await inboxSnapshot(f.v.inbox);
  const r = await f.tree();
  t.same(actionsOf(r.actions, f.v.inbox), [['skipped', 'widget/feature']]);
  t.match(r.actions[0], { reason: /a prompt is running here \(sub\/job\.running\.md\)/ });
  t.same(await inboxSnapshot(f.v.inbox), before, 'no ERROR.md, nothing moved');
});

t.test('a remote that cannot be reached: no change at all and a failed action', async (t) => {
  const f = await treeFixture(t);
  const bare = await f.addRepo('acme', 'widget', ['main', 'feature']);
  await f.addRepo('acme', 'other', ['main']);
  await f.tree();
  await f.v.dropPrompt('widget/feature/a.prompt.md', 'a');
  await fsp.mkdir(path.join(f.v.inbox, 'widget', 'ghost'));
  await fsp.rename(bare, `${bare}.moved`);
  const before = await inboxSnapshot(f.v.inbox);
  const r = await f.tree();
  t.equal(r.code, 0, 'a failed repository is a record, not an exit status');
  t.same(await inboxSnapshot(f.v.inbox), before, 'not even the empty stale folder is touched');
  t.same(actionsOf(r.actions, f.v.inbox), [['failed', 'widget']]);
  t.match(r.actions[0], { repo: 'acme/widget', reason: /cannot list the branches of origin .*git ls-remote --heads origin/ });
  t.match(r.summary, { failed: 1, repos: 2 });
  t.match(r.stderr, /failed: .*widget/);

  await fsp.rename(`${bare}.moved`, bare);
  const healed = await f.tree();
  t.same(actionsOf(healed.actions, f.v.inbox), [['removed', 'widget/ghost']], 'once reachable, the pass goes on as usual');
});

t.test('a clone that is not a git repository is reported and its folders kept', async (t) => {
  const f = await treeFixture(t);
  await f.addRepo('acme', 'widget', ['main']);
  await f.tree();
  await fsp.rm(path.join(f.v.repos, 'acme', 'widget', '.git'), { recursive: true });
  const before = await inboxSnapshot(f.v.inbox);
  const r = await f.tree();
  t.match(actionsOf(r.actions, f.v.inbox), [['failed', 'widget'], ['marked', '']]);
  t.match(r.actions[0], { reason: /not a git repository/ });
  t.same((await inboxListing(f.v.inbox)).filter((p) => p !== 'ERROR.md'), Object.keys(before));
});

t.test('a repository removed from repos_root: empty folders go, a folder with content stays with an ERROR.md', async (t) => {
  const f = await treeFixture(t, { inbox_mode: 'multi_owner' });
  await f.addRepo('acme', 'widget', ['main', 'dev']);
  await f.addRepo('acme', 'keep', ['main']);
  await f.addRepo('solo', 'thing', ['main']);
  await f.tree();
  await f.v.dropPrompt('acme/widget/dev/p.prompt.md', 'p');
  await fsp.rm(path.join(f.v.repos, 'acme', 'widget'), { recursive: true });
  await fsp.rm(path.join(f.v.repos, 'solo'), { recursive: true });
  const r = await f.tree();
  t.equal(r.code, 0, r.stderr);
  t.same(actionsOf(r.actions, f.v.inbox), [['marked', 'acme/widget'], ['removed', 'solo']]);
  t.match(await fsp.readFile(path.join(f.v.inbox, 'acme', 'widget', 'ERROR.md'), 'utf8'), /`acme\/widget` is not cloned[\s\S]*- `dev\/p\.prompt\.md`/);
  t.same(await inboxListing(f.v.inbox), [
    'acme/', 'acme/keep/', 'acme/keep/main/',
    'acme/widget/', 'acme/widget/ERROR.md', 'acme/widget/dev/', 'acme/widget/dev/p.prompt.md', 'acme/widget/main/',
  ]);
  t.same((await f.tree()).actions, [], 'idempotent');
});
