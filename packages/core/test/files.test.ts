import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileAtomic, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from '../src/files.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('atomic write replaces content and leaves no temporary file', async (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'status.json');
  await writeJsonAtomic(f, { a: 1 });
  await writeJsonAtomic(f, { a: 2 });
  t.same(await readJsonIfExists(f), { a: 2 });
  t.same(fs.readdirSync(dir), ['status.json'], 'only the target remains');
  t.equal(await readJsonIfExists(path.join(dir, 'missing.json')), undefined);
});

t.test('concurrent readers never see a torn file', async (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'big.json');
  const bodies = Array.from({ length: 20 }, (_, i) => JSON.stringify({ i, pad: String(i).repeat(200_000) }));
  await writeFileAtomic(f, bodies[0]!);
  let reads = 0;
  let stop = false;
  const reader = (async () => {
    while (!stop) {
      const text = fs.readFileSync(f, 'utf8');
      JSON.parse(text); // throws on a torn file
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (const b of bodies) await writeFileAtomic(f, b, { durable: false });
  stop = true;
  await reader;
  t.ok(reads > 0, `read ${reads} times while writing`);
});

t.test('create-only write: of 20 writers racing for one name exactly one creates it, whole; the rest leave it untouched', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'claim.json');
  const made = await Promise.all(Array.from({ length: 20 }, (_, i) => createFileAtomic(file, `writer ${i}\n`.repeat(1000))));
  t.equal(made.filter(Boolean).length, 1, 'one writer created it');
  const winner = made.indexOf(true);
  t.equal(fs.readFileSync(file, 'utf8'), `writer ${winner}\n`.repeat(1000), "the winner's content, whole");
  t.equal(await createFileAtomic(file, 'late\n'), false, 'a later writer is refused');
  t.equal(fs.readFileSync(file, 'utf8'), `writer ${winner}\n`.repeat(1000), 'and changes nothing');
  t.same(fs.readdirSync(dir), ['claim.json'], 'no temporary file left');
});

t.test('mode is applied', async (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'secret');
  await writeFileAtomic(f, 'x', { mode: 0o600 });
  t.equal(fs.statSync(f).mode & 0o777, 0o600);
});
