import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { newFileTail, readAppendedLines } from '../src/file-tail.js';

function tmpFile(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-tail-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'agent.log');
}

t.test('complete lines as they are appended; a line without its newline waits', async (t) => {
  const file = tmpFile(t);
  const tail = newFileTail();
  t.equal(await readAppendedLines(file, tail), undefined, 'no file yet: nothing');
  fs.writeFileSync(file, 'one\ntwo\nthr');
  t.same(await readAppendedLines(file, tail), { text: 'one\ntwo', end: 8 });
  t.equal(await readAppendedLines(file, tail), undefined, 'only a partial line left');
  fs.appendFileSync(file, 'ee\n');
  t.same(await readAppendedLines(file, tail), { text: 'three', end: 14 });
});

t.test('a UTF-8 character cut by a read boundary arrives whole', async (t) => {
  const file = tmpFile(t);
  const line = `${'é'.repeat(10)}\n`; // 2 bytes each: a 3-byte read cuts one
  fs.writeFileSync(file, line);
  const tail = newFileTail();
  const texts: string[] = [];
  for (let got = await readAppendedLines(file, tail, 3); got; got = await readAppendedLines(file, tail, 3)) texts.push(got.text);
  t.same(texts, ['é'.repeat(10)]);
});

t.test('reads at most about maxBytes a call; a truncated file is read again from its start', async (t) => {
  const file = tmpFile(t);
  fs.writeFileSync(file, 'aaaa\nbbbb\ncccc\n');
  const tail = newFileTail();
  t.same(await readAppendedLines(file, tail, 5), { text: 'aaaa', end: 5 });
  t.same(await readAppendedLines(file, tail, 5), { text: 'bbbb', end: 10 });
  fs.writeFileSync(file, 'new\n');
  t.same(await readAppendedLines(file, tail), { text: 'new', end: 4 }, 'shorter than the offset: from the start');
});

t.test('a tail may start at an offset (a client resuming)', async (t) => {
  const file = tmpFile(t);
  fs.writeFileSync(file, 'old\nnew\n');
  t.same(await readAppendedLines(file, newFileTail(4)), { text: 'new', end: 8 });
});
