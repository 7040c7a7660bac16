import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { git, newRunId } from '@prompt-valet/core';
import { cloneInto, makeOrigin } from '@prompt-valet/testkit';
import { filesCutAtSizeLimit, type CutFileCheckout } from '../src/file-size-limit.js';

/**
 * Which files of a run's checkout count as cut at the file size limit (the
 * run then settles as resource_limit): what `git status` would have
 * pv-publish commit, on a real clone and a `git worktree add` checkout laid
 * out as pv-clone makes them.
 */
const LIMIT = 4096;

interface RunCheckoutFixture extends CutFileCheckout {
  root: string;
  /** a file `name` of the checkout with `bytes` bytes */
  write(name: string, bytes: number): void;
}

async function runCheckout(t: { teardown(fn: () => void): void }): Promise<RunCheckoutFixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-cut-files-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const origin = await makeOrigin(path.join(root, 'origins/o/widget.git'), {
    files: {
      'README.md': '# widget\n',
      'tracked.txt': 'small\n',
      'to-rename.txt': 'renamed by the agent\n',
      'to-delete.bin': 'x'.repeat(LIMIT),
      'folder/inside.bin': 'small\n',
      '.gitignore': 'node_modules/\n*.log\n',
    },
  });
  const repoDir = await cloneInto(origin, path.join(root, 'repos/o/widget'));
  const workTree = path.join(root, 'repos/.worktrees/o/widget', newRunId());
  await git(['worktree', 'add', '--quiet', '-b', 'codex/cut', '--', workTree], { cwd: repoDir });
  const write = (name: string, bytes: number) => {
    fs.mkdirSync(path.dirname(path.join(workTree, name)), { recursive: true });
    fs.writeFileSync(path.join(workTree, name), Buffer.alloc(bytes));
  };
  return { root, repoDir, workTree, write };
}

t.test('changed and untracked files at the limit, written since the agent started, are cut; smaller ones are not', async (t) => {
  const co = await runCheckout(t);
  const started = Date.now() - 1000;
  co.write('tracked.txt', LIMIT);
  co.write('sub/deeper/new.bin', LIMIT + 10);
  co.write('small.bin', LIMIT - 1);
  co.write('with space.bin', LIMIT);
  co.write('line\nbreak.bin', LIMIT);
  t.same(await filesCutAtSizeLimit(co, LIMIT, started), {
    checked: true,
    files: ['line\nbreak.bin', 'sub/deeper/new.bin', 'tracked.txt', 'with space.bin'],
  });
});

t.test('a file whose name is not UTF-8 is found by its bytes (named with U+FFFD in the message)', async (t) => {
  const co = await runCheckout(t);
  const started = Date.now() - 1000;
  fs.writeFileSync(Buffer.concat([Buffer.from(`${co.workTree}/latin-`), Buffer.from([0xe9]), Buffer.from('.bin')]), Buffer.alloc(LIMIT));
  t.same(await filesCutAtSizeLimit(co, LIMIT, started), { checked: true, files: ['latin-\ufffd.bin'] });
});

t.test('a file renamed in the index and then cut is named by its new path', async (t) => {
  const co = await runCheckout(t);
  const started = Date.now() - 1000;
  await git(['mv', 'to-rename.txt', 'renamed\nfile.bin'], { cwd: co.workTree });
  co.write('renamed\nfile.bin', LIMIT);
  const status = (await git(['status', '--porcelain=v2', '-z'], { cwd: co.workTree })).stdout;
  t.match(status, /^2 R/, 'git records it as a rename (a `2` entry carrying both paths)');
  t.same(await filesCutAtSizeLimit(co, LIMIT, started), { checked: true, files: ['renamed\nfile.bin'] });
});

t.test('not the run\'s cut files: ignored files, older files, symlinks, deleted files, the .git pointer', async (t) => {
  const co = await runCheckout(t);
  const outside = path.join(co.root, 'outside');
  fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'big.bin'), Buffer.alloc(LIMIT * 2));
  fs.writeFileSync(path.join(outside, 'sub/big.bin'), Buffer.alloc(LIMIT));
  co.write('old.bin', LIMIT);
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(co.workTree, 'old.bin'), past, past);
  const started = Date.now() - 1000;
  // what `npm install` and a build leave: ignored, never published
  co.write('node_modules/pkg/big.bin', LIMIT);
  co.write('build.log', LIMIT);
  fs.symlinkSync(path.join(outside, 'big.bin'), path.join(co.workTree, 'link.bin'));
  fs.symlinkSync(path.join(outside, 'sub'), path.join(co.workTree, 'linked-folder'));
  fs.rmSync(path.join(co.workTree, 'to-delete.bin'));
  // a tracked folder swapped for a link to a folder with a big file of the same name: deleted, the link not followed
  fs.mkdirSync(path.join(outside, 'folder'));
  fs.writeFileSync(path.join(outside, 'folder/inside.bin'), Buffer.alloc(LIMIT));
  fs.rmSync(path.join(co.workTree, 'folder'), { recursive: true });
  fs.symlinkSync(path.join(outside, 'folder'), path.join(co.workTree, 'folder'));
  // the pointer is the agent's to rewrite, and git never lists it
  fs.writeFileSync(path.join(co.workTree, '.git'), fs.readFileSync(path.join(co.workTree, '.git'), 'utf8').padEnd(LIMIT, '\n'));
  const status = (await git(['status', '--porcelain', '-z', '--untracked-files=all'], { cwd: co.workTree })).stdout;
  t.match(status, /link\.bin/, 'git does see the symlink as a change');
  t.same(await filesCutAtSizeLimit(co, LIMIT, started), { checked: true, files: [] });
});

t.test('a .git file the agent pointed at another repository is not read: the clone\'s admin folder is', async (t) => {
  const co = await runCheckout(t);
  const started = Date.now() - 1000;
  co.write('cut.bin', LIMIT);
  // A repository of the agent's whose exclude file would hide the cut file, were its git dir used.
  const decoy = path.join(co.root, 'decoy');
  await git(['init', '--quiet', decoy]);
  fs.writeFileSync(path.join(decoy, '.git/info/exclude'), '*.bin\n');
  fs.writeFileSync(path.join(co.workTree, '.git'), `gitdir: ${path.join(decoy, '.git')}\n`);
  const plainStatus = (await git(['status', '--porcelain', '--untracked-files=all'], { cwd: co.workTree })).stdout;
  t.notMatch(plainStatus, /cut\.bin/, 'git run in the checkout would follow the pointer and miss it');
  t.same(await filesCutAtSizeLimit(co, LIMIT, started), { checked: true, files: ['cut.bin'] });
});

t.test('a checkout git cannot read is not checked: an error with a code, no crash', async (t) => {
  const co = await runCheckout(t);
  const started = Date.now() - 1000;
  co.write('cut.bin', LIMIT);

  const other = { repoDir: path.join(co.root, 'repos/o/other'), workTree: co.workTree };
  const noClone = await filesCutAtSizeLimit(other, LIMIT, started);
  t.match(noClone, { checked: false, error: { code: 'not_a_git_repo' } }, 'no shared clone at repo_dir');

  // the admin folder's record names another checkout than this one
  const adminDir = path.join(co.repoDir, '.git/worktrees', path.basename(co.workTree));
  fs.writeFileSync(path.join(adminDir, 'gitdir'), path.join(co.root, 'elsewhere/.git') + '\n');
  const foreign = await filesCutAtSizeLimit(co, LIMIT, started);
  t.match(foreign, { checked: false, error: { code: 'not_a_git_repo', message: /belongs to/ } });

  // the admin folder's record is a folder: refused as not a regular file
  fs.rmSync(path.join(adminDir, 'gitdir'));
  fs.mkdirSync(path.join(adminDir, 'gitdir'));
  t.match(await filesCutAtSizeLimit(co, LIMIT, started), { checked: false, error: { code: 'not_a_git_repo' } });

  // git itself fails: the checkout is gone
  fs.rmSync(path.join(adminDir, 'gitdir'), { recursive: true });
  fs.writeFileSync(path.join(adminDir, 'gitdir'), path.join(co.workTree, '.git') + '\n');
  fs.rmSync(co.workTree, { recursive: true });
  t.match(await filesCutAtSizeLimit(co, LIMIT, started), { checked: false, error: { code: 'git_failed' } });
});
