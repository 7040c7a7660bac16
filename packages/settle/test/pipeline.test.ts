import t from 'tap';
import { execa } from 'execa';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { HOSTILE_INBOX_PATHS, binPath, claimLockedCommand, makeValetRoot, parseRecords, type ValetRoot } from '@prompt-valet/testkit';

/** The steps between resolve and settle, faked: every record that has not failed published nothing. */
const FAKE_SUCCESS = `
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (l) => { const r = JSON.parse(l); if (!r.error) r.publish = { outcome: 'no_changes' }; process.stdout.write(JSON.stringify(r) + '\\n'); });
`;

async function pipeline(r: ValetRoot) {
  const fake = path.join(r.root, 'fake-success.cjs');
  await fs.writeFile(fake, FAKE_SUCCESS);
  const node = JSON.stringify(process.execPath);
  const cfg = JSON.stringify(r.configPath);
  const cmd = [
    `${node} ${JSON.stringify(binPath('pv-claim'))} --config ${cfg}`,
    `${node} ${JSON.stringify(binPath('pv-resolve'))} --config ${cfg}`,
    `${node} ${JSON.stringify(fake)}`,
    `${node} ${JSON.stringify(binPath('pv-settle'))} --config ${cfg}`,
  ].join(' | ');
  const res = await execa('bash', ['--norc', '-o', 'pipefail', '-c', claimLockedCommand(r.processed, cmd)], { reject: false, timeout: 120_000, env: { NO_COLOR: '1' } });
  return { code: res.exitCode, stderr: String(res.stderr), records: parseRecords(String(res.stdout)) };
}

async function tree(dir: string): Promise<string[]> {
  const out = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return out.filter((d) => !d.isDirectory()).map((d) => path.relative(dir, path.join(d.parentPath, d.name))).sort();
}

t.test('pv-claim | pv-resolve | fake success | pv-settle; then a prompt reusing the finished name runs too', async (t) => {
  const r = await makeValetRoot();
  t.teardown(() => r.cleanup());
  await r.dropPrompt('widget/main/x.prompt.md', 'first x');
  await r.dropPrompt('widget/feature~y/y.prompt.md', 'y');
  const one = await pipeline(r);
  t.equal(one.code, 0, one.stderr);
  t.equal(one.records.length, 2);
  for (const rec of one.records) t.match(rec, { settle: { state: 'done', outcome: 'no_changes' }, target: { owner: 'acme', repo: 'widget' } });
  t.same(await tree(r.finished), ['widget/feature~y/y.done.md', 'widget/main/x.done.md']);
  t.same(await tree(r.inbox), [], 'inbox empty');

  await r.dropPrompt('widget/main/x.prompt.md', 'second x');
  const two = await pipeline(r);
  t.equal(two.records.length, 1, 'the reused name is claimed');
  t.match(two.records[0], { settle: { state: 'done', path: path.join(r.finished, 'widget/main/x.2.done.md') } });
  t.equal(await fs.readFile(path.join(r.finished, 'widget/main/x.done.md'), 'utf8'), 'first x');
  t.equal(await fs.readFile(path.join(r.finished, 'widget/main/x.2.done.md'), 'utf8'), 'second x');
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'claims')), [], 'no claim left held');
});

t.test('hostile paths and a symlink leading outside end as x.error.md with a reason; nothing outside is touched', async (t) => {
  const r = await makeValetRoot();
  t.teardown(() => r.cleanup());
  const outside = path.join(r.root, 'outside');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret.md'), 'SECRET');
  const before = await fs.stat(path.join(outside, 'secret.md'));
  for (const h of HOSTILE_INBOX_PATHS) await r.dropPrompt(h.rel, `hostile: ${h.why}`);
  await fs.mkdir(path.join(r.inbox, 'widget', 'main'), { recursive: true });
  await fs.symlink(path.join(outside, 'secret.md'), path.join(r.inbox, 'widget', 'main', 'link.prompt.md'));
  await fs.writeFile(path.join(outside, 'inside-link.prompt.md'), 'reached through a folder link');
  await fs.symlink(outside, path.join(r.inbox, 'widget', 'linked-dir'));

  const res = await pipeline(r);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.records.length, HOSTILE_INBOX_PATHS.length + 1);
  for (const rec of res.records) {
    t.match(rec.settle, { state: 'error' }, rec.claim!.prompt_rel as string);
    t.ok(rec.error?.message, 'a reason');
    const reason = await fs.readFile(rec.settle!.reason_path as string, 'utf8');
    t.match(reason, rec.error!.code);
  }
  const link = res.records.find((rec) => rec.claim!.prompt_rel === 'widget/main/link.prompt.md')!;
  t.match(link.error, { code: 'symlink_refused' });
  t.ok((await fs.lstat(link.settle!.path)).isSymbolicLink(), 'the link itself was filed, not its target');
  t.same((await fs.readdir(outside)).sort(), ['inside-link.prompt.md', 'secret.md'], 'nothing written or claimed outside');
  const after = await fs.stat(path.join(outside, 'secret.md'));
  t.equal(after.mtimeMs, before.mtimeMs);
  t.equal(await fs.readFile(path.join(outside, 'secret.md'), 'utf8'), 'SECRET');
  const runCopies = await Promise.all(res.records.map((rec) => fs.readFile(path.join(rec.claim!.run_root, 'prompt.md'), 'utf8').catch(() => '')));
  t.notOk(runCopies.some((c) => c.includes('SECRET')), 'the target was never read');
  t.same(await tree(r.inbox), ['widget/linked-dir'], 'every hostile prompt left the inbox; the linked folder was never entered');
});
