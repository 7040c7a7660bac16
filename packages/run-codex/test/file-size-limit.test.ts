import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { filesCutAtSizeLimit } from '../src/file-size-limit.js';

/** Which files of a checkout count as cut at the file size limit (the run then settles as resource_limit). */
const LIMIT = 4096;

function checkout(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-cut-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a file at the limit, at any depth, changed since the agent started, is cut', async (t) => {
  const dir = checkout(t);
  const started = Date.now() - 1000;
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a/b/log.txt'), Buffer.alloc(LIMIT));
  fs.writeFileSync(path.join(dir, 'top.bin'), Buffer.alloc(LIMIT));
  fs.writeFileSync(path.join(dir, 'small.txt'), Buffer.alloc(LIMIT - 1));
  t.same(filesCutAtSizeLimit(dir, LIMIT, started), ['a/b/log.txt', 'top.bin']);
});

t.test('what is not the run\'s cut file: older files, symlinks (never followed), the .git pointer', async (t) => {
  const dir = checkout(t);
  const outside = checkout(t);
  fs.writeFileSync(path.join(dir, 'old.bin'), Buffer.alloc(LIMIT));
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, 'old.bin'), past, past);
  const started = Date.now() - 1000;
  fs.writeFileSync(path.join(outside, 'big.bin'), Buffer.alloc(LIMIT * 2));
  fs.mkdirSync(path.join(outside, 'sub'));
  fs.writeFileSync(path.join(outside, 'sub/big.bin'), Buffer.alloc(LIMIT));
  fs.symlinkSync(path.join(outside, 'big.bin'), path.join(dir, 'link.bin'));
  fs.symlinkSync(path.join(outside, 'sub'), path.join(dir, 'linked-folder'));
  fs.writeFileSync(path.join(dir, '.git'), 'gitdir: /x\n'.padEnd(LIMIT, ' '));
  t.same(filesCutAtSizeLimit(dir, LIMIT, started), []);
});
