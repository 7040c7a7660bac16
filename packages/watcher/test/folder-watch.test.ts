import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FolderWatch } from '../src/folder-watch.js';

/** Events from every folder below the root, new folders included, hidden ones left out. */
t.test('folder watch: changes in nested and new folders are reported, hidden ones are not', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-folder-watch-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'widget', 'main'), { recursive: true });
  fs.mkdirSync(path.join(root, '.ledger'));
  const seen: string[] = [];
  const watch = new FolderWatch(root, (dir, name) => seen.push(name === null ? `${path.relative(root, dir)}/*` : path.relative(root, path.join(dir, name))), () => undefined);
  t.teardown(() => watch.close());
  watch.sync();
  t.equal(watch.size, 3, 'the root, widget and widget/main: not the hidden folder');

  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
    t.ok(ok(), what);
  };
  fs.writeFileSync(path.join(root, 'widget', 'main', 'a.prompt.md'), 'a');
  await until('a prompt in a nested folder', () => seen.includes('widget/main/a.prompt.md'));

  fs.mkdirSync(path.join(root, 'gadget'));
  await until('a new folder is reported as a change to look at', () => seen.includes('gadget/*'));
  await until('and watched', () => watch.size === 4);
  fs.writeFileSync(path.join(root, 'gadget', 'b.prompt.md'), 'b');
  await until('a prompt in the new folder', () => seen.includes('gadget/b.prompt.md'));

  fs.writeFileSync(path.join(root, '.ledger', 'x.json'), '{}');
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(seen.some((s) => s.startsWith('.ledger')), 'nothing from the hidden folder');

  fs.rmSync(path.join(root, 'gadget'), { recursive: true });
  watch.sync();
  t.equal(watch.size, 3, 'a folder that went away is no longer watched');
});
