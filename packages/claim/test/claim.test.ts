import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isRunId, readRetryEntry, writeRetryEntry, type PvRecord } from '@prompt-valet/core';
import { execa } from 'execa';
import { binPath, claimLockedCommand, makeValetRoot, runBin, shQuote, waitFor, type ValetRoot } from '@prompt-valet/testkit';

async function root(t: Test, overrides = {}): Promise<ValetRoot> {
  const r = await makeValetRoot(overrides);
  t.teardown(() => r.cleanup());
  return r;
}

// Under a claim lock, as pv-watcher runs it.
const claim = (r: ValetRoot, args: string[] = []) => runBin('pv-claim', ['--config', r.configPath, ...args], { claimLockIn: r.processed });

/** pv-claim under a claim lock, started by `execa` so the test can talk to its stdin. */
const claimProcess = (r: ValetRoot, args: string[], opts: { input?: string } = {}) =>
  execa('sh', ['-c', claimLockedCommand(r.processed, [process.execPath, binPath('pv-claim'), '--config', r.configPath, ...args].map(shQuote).join(' '))], {
    reject: false,
    timeout: 60_000,
    ...opts,
  });

async function files(dir: string): Promise<string[]> {
  const out = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return out.filter((d) => !d.isDirectory()).map((d) => path.relative(dir, path.join(d.parentPath, d.name))).sort();
}

t.test('claims a prompt: running name, run folder with a copy, status, record', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/fix-login.prompt.md', '# Fix login\n');
  const res = await claim(r);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.records.length, 1);
  const rec = res.records[0]!;
  t.ok(isRunId(rec.run_id!), 'a run id');
  t.match(rec.claim, {
    liveness: { kind: 'local', lock: /^test-/ },
    inbox: r.inbox,
    rel: 'widget/main/fix-login.running.md',
    prompt_rel: 'widget/main/fix-login.prompt.md',
    prompt_name: 'fix-login.prompt.md',
    attempt: 1,
    run_root: path.join(r.processed, rec.run_id!),
  });
  t.same(await files(r.inbox), ['widget/main/fix-login.running.md']);
  t.equal(await fs.readFile(path.join(rec.claim!.run_root, 'prompt.md'), 'utf8'), '# Fix login\n');
  const status = JSON.parse(await fs.readFile(path.join(rec.claim!.run_root, 'status.json'), 'utf8'));
  t.match(status, { state: 'claimed', prompt_rel: 'widget/main/fix-login.prompt.md', attempt: 1 });
  t.equal((await claim(r)).records.length, 0, 'nothing left to claim');
});

t.test('exactly once: 4 claimers racing over 200 prompts', async (t) => {
  const r = await root(t);
  const texts = new Map<string, string>();
  for (let i = 0; i < 200; i++) {
    const rel = `repo${i % 5}/main/${i % 2 ? 'sub/' : ''}p${i}.prompt.md`;
    texts.set(rel, `prompt number ${i}\n`);
    await r.dropPrompt(rel, `prompt number ${i}\n`);
  }
  const results = await Promise.all([1, 2, 3, 4].map(() => claim(r)));
  for (const res of results) t.equal(res.code, 0, res.stderr);
  const records = results.flatMap((res) => res.records);
  const rels = records.map((rec) => rec.claim!.prompt_rel as string).sort();
  t.equal(records.length, 200, 'every prompt claimed once in all');
  t.same(rels, [...texts.keys()].sort(), 'no prompt claimed twice, none missed');
  t.equal(new Set(records.map((rec) => rec.run_id)).size, 200, 'distinct run ids');
  t.ok(results.filter((res) => res.records.length > 0).length >= 2, 'the claimers really raced');
  const inbox = await files(r.inbox);
  t.equal(inbox.length, 200, 'no file lost or duplicated in the inbox');
  t.ok(inbox.every((f) => f.endsWith('.running.md')), 'all running');
  for (const rec of records) {
    t.equal(await fs.readFile(path.join(rec.claim!.run_root, 'prompt.md'), 'utf8'), texts.get(rec.claim!.prompt_rel as string));
  }
  const claims = await fs.readdir(path.join(r.processed, '.ledger', 'claims'));
  t.equal(claims.length, 200, 'one claim record per claim, losers left none');
});

t.test('exactly once for resumed runs: 4 claimers racing over 40 retried prompts; each claim keeps its own record', async (t) => {
  const r = await root(t, { watcher: { retry_backoff_seconds: 0 } });
  for (let i = 0; i < 40; i++) await r.dropPrompt(`repo${i % 4}/main/p${i}.prompt.md`, `prompt number ${i}\n`);
  const first = await claim(r);
  t.equal(first.records.length, 40);
  // Each back to pending, to be resumed under its run id (a claim record per run: claims/<run id>.json).
  const gh = { step: 'publish', code: 'gh_failed', message: 'gh pr create: HTTP 502', retryable: true };
  const settled = await runBin('pv-settle', ['--config', r.configPath], { input: first.records.map((rec) => ({ ...rec, error: gh }) as PvRecord) });
  t.equal(settled.code, 0, settled.stderr);
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'claims')), [], 'the first claims let go');

  const results = await Promise.all([1, 2, 3, 4].map(() => claim(r)));
  for (const res of results) t.equal(res.code, 0, res.stderr);
  const records = results.flatMap((res) => res.records);
  t.equal(records.length, 40, 'every prompt claimed once in all');
  t.same(records.map((rec) => rec.run_id).sort(), first.records.map((rec) => rec.run_id).sort(), 'each resumed under its run id');
  t.ok(results.filter((res) => res.records.length > 0).length >= 2, 'the claimers really raced');
  // A loser must neither overwrite the winner's record nor remove it: the record is what recovery resumes from.
  const lost: string[] = [];
  for (const rec of records) {
    const file = path.join(r.processed, '.ledger', 'claims', `${rec.run_id}.json`);
    const stored = await fs.readFile(file, 'utf8').then((text) => JSON.parse(text) as { liveness?: { lock?: string } }, () => undefined);
    const lock = (rec.claim!.liveness as { lock: string }).lock;
    if (stored?.liveness?.lock !== lock) lost.push(`${rec.run_id}: ${stored ? `names ${stored.liveness?.lock}` : 'no record'}, claimed under ${lock}`);
  }
  t.same(lost, [], "every claim's record is its own");
});

t.test('two prompts in one folder in the same second: distinct run ids and folders', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/a.prompt.md', 'text of a\n');
  await r.dropPrompt('widget/main/b.prompt.md', 'text of b\n');
  const res = await claim(r);
  t.equal(res.records.length, 2);
  const [a, b] = res.records as [PvRecord, PvRecord];
  t.equal(a.run_id!.slice(0, 15), b.run_id!.slice(0, 15), 'same second');
  t.not(a.run_id, b.run_id);
  t.not(a.claim!.run_root, b.claim!.run_root);
  for (const rec of [a, b]) {
    const stem = path.basename(rec.claim!.prompt_rel as string, '.prompt.md');
    t.equal(await fs.readFile(path.join(rec.claim!.run_root, 'prompt.md'), 'utf8'), `text of ${stem}\n`);
  }
});

t.test('partial uploads are not claimed; a fresh file waits for the settle window', async (t) => {
  const r = await root(t, { watcher: { quiet_seconds: 2 } });
  const dir = path.join(r.inbox, 'widget', 'main');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'empty.prompt.md'), '');
  await fs.writeFile(path.join(dir, 'up.prompt.md.PARTIAL'), 'half');
  await fs.writeFile(path.join(dir, '.hidden.prompt.md'), 'hidden');
  await fs.mkdir(path.join(dir, '.sync'), { recursive: true });
  await fs.writeFile(path.join(dir, '.sync', 'y.prompt.md'), 'in a hidden folder');
  const old = new Date(Date.now() - 60_000);
  for (const f of ['empty.prompt.md', 'up.prompt.md.PARTIAL', '.hidden.prompt.md']) await fs.utimes(path.join(dir, f), old, old);
  await fs.writeFile(path.join(dir, 'fresh.prompt.md'), 'just written');

  const claimed: PvRecord[] = [];
  const first = await claim(r, ['--settle-seconds', '30']);
  t.same(first.records, [], 'nothing claimable yet');
  // An scp-style upload that keeps growing is never claimed while it grows.
  const growing = path.join(dir, 'growing.prompt.md');
  await fs.writeFile(growing, 'part 1\n');
  for (let i = 0; i < 3; i++) {
    await fs.appendFile(growing, `part ${i + 2}\n`);
    const res = await claim(r, ['--settle-seconds', '30']);
    t.same(res.records, [], 'growing (and fresh) file not claimed');
  }
  await waitFor('the fresh file to settle and be claimed', async () => {
    claimed.push(...(await claim(r)).records);
    return claimed.some((rec) => rec.claim!.prompt_rel === 'widget/main/fresh.prompt.md');
  });
  t.pass('claimed once settled');
  const left = await files(dir);
  for (const f of ['empty.prompt.md', 'up.prompt.md.PARTIAL', '.hidden.prompt.md', '.sync/y.prompt.md']) {
    t.ok(left.includes(f), `${f} left alone`);
  }
});

t.test('--limit takes the oldest first; --dry-run changes nothing', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/new.prompt.md', 'n', { ageMs: 1_000 });
  await r.dropPrompt('widget/main/old.prompt.md', 'o', { ageMs: 3_600_000 });
  // ctime is "now" for both; the older mtime must still not win over a newer change
  const dry = await claim(r, ['--dry-run', '--limit', '1']);
  t.equal(dry.code, 0);
  t.equal(dry.records.length, 1);
  t.equal(dry.records[0]!.dry_run, true);
  t.same(await files(r.inbox), ['widget/main/new.prompt.md', 'widget/main/old.prompt.md'], 'dry run claimed nothing');
  const one = await claim(r, ['--limit', '1']);
  t.equal(one.records.length, 1);
  const two = await claim(r, ['--limit', '1']);
  t.equal(two.records.length, 1);
  t.not(one.records[0]!.claim!.prompt_rel, two.records[0]!.claim!.prompt_rel);
  t.equal((await claim(r, ['--limit', '1'])).records.length, 0);
  t.equal((await claim(r, ['--limit', 'x'])).code, 64, 'a bad limit is a usage error');
});

t.test('oldest first by last change', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/first.prompt.md', 'f');
  await new Promise((res) => setTimeout(res, 50));
  await r.dropPrompt('widget/main/second.prompt.md', 's');
  const res = await claim(r, ['--limit', '1']);
  t.equal(res.records[0]!.claim!.prompt_rel, 'widget/main/first.prompt.md');
});

t.test('a prompt waiting for its backoff is skipped; its attempt count is kept', async (t) => {
  const r = await root(t);
  const p = await r.dropPrompt('widget/main/retry.prompt.md', 'again');
  const ino = (await fs.lstat(p)).ino;
  await writeRetryEntry(r.processed, {
    v: 1, prompt_rel: 'widget/main/retry.prompt.md', ino, attempts: 2,
    not_before: new Date(Date.now() + 3_600_000).toISOString(), updated_at: new Date().toISOString(),
  });
  t.same((await claim(r)).records, [], 'not before its time');
  t.same((await claim(r, ['--dry-run'])).records, [], 'not listed by a dry run either');
  await writeRetryEntry(r.processed, {
    v: 1, prompt_rel: 'widget/main/retry.prompt.md', ino, attempts: 2,
    not_before: new Date(Date.now() - 1000).toISOString(), updated_at: new Date().toISOString(),
  });
  const res = await claim(r);
  t.equal(res.records[0]!.claim!.attempt, 3, 'third attempt');
  t.equal(await readRetryEntry(r.processed, 'widget/main/retry.prompt.md'), undefined, 'entry consumed by the claim');
});

t.test('a pending entry of another file at the same name is not inherited', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/x.prompt.md', 'new file');
  await writeRetryEntry(r.processed, {
    v: 1, prompt_rel: 'widget/main/x.prompt.md', ino: 1, attempts: 2,
    not_before: new Date(Date.now() + 3_600_000).toISOString(), updated_at: new Date().toISOString(),
  });
  const res = await claim(r);
  t.equal(res.records.length, 1);
  t.equal(res.records[0]!.claim!.attempt, 1);
});

t.test('a second x.prompt.md waits while x runs', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/x.prompt.md', 'first');
  t.equal((await claim(r)).records.length, 1);
  await r.dropPrompt('widget/main/x.prompt.md', 'second');
  t.same((await claim(r)).records, [], 'x.running.md is never overwritten');
  t.same(await files(r.inbox), ['widget/main/x.prompt.md', 'widget/main/x.running.md']);
  t.equal(await fs.readFile(path.join(r.inbox, 'widget/main/x.running.md'), 'utf8'), 'first');
});

t.test('a symlink leading outside is claimed as an error and never read', async (t) => {
  const r = await root(t);
  const secret = path.join(r.root, 'secret.txt');
  await fs.writeFile(secret, 'TOP SECRET');
  await fs.mkdir(path.join(r.inbox, 'widget', 'main'), { recursive: true });
  await fs.symlink(secret, path.join(r.inbox, 'widget', 'main', 'evil.prompt.md'));
  const res = await claim(r);
  t.equal(res.records.length, 1);
  t.match(res.records[0]!.error, { step: 'claim', code: 'symlink_refused', retryable: false });
  const runFiles = await fs.readdir(res.records[0]!.claim!.run_root);
  t.notOk(runFiles.includes('prompt.md'), 'no copy of what the link points at');
  t.equal(await fs.readFile(secret, 'utf8'), 'TOP SECRET');
  t.ok((await fs.lstat(path.join(r.inbox, 'widget/main/evil.running.md'))).isSymbolicLink());
});

t.test('a missing inbox is a configuration error', async (t) => {
  const r = await root(t);
  const res = await claim(r, ['--inbox', path.join(r.root, 'nope')]);
  t.equal(res.code, 78);
  t.match(res.stderr, /inbox .*nope/);
});

t.test('--help describes the tool on stdout', async (t) => {
  const res = await execa(process.execPath, [binPath('pv-claim'), '--help'], { reject: false, timeout: 60_000 });
  t.equal(res.exitCode, 0);
  t.match(res.stdout, /--recover/);
  t.match(res.stdout, /Exit status/);
});

t.test('--wait: started ahead, claims only after a go line; end of input claims nothing', async (t) => {
  const r = await makeValetRoot();
  t.teardown(() => r.cleanup());
  const child = claimProcess(r, ['--limit', '1', '--wait']);
  // The prompt arrives after the claimer started: it is found once told to go.
  await new Promise((res) => setTimeout(res, 300));
  await r.dropPrompt('widget/main/late.prompt.md', '# Late\n', { ageMs: 5000 });
  t.ok(await fs.stat(path.join(r.inbox, 'widget/main/late.prompt.md')), 'not claimed before the go line');
  child.stdin!.end('go\n');
  const res = await child;
  t.equal(res.exitCode, 0, String(res.stderr));
  const recs = String(res.stdout).trim().split('\n').map((l) => JSON.parse(l) as PvRecord);
  t.equal(recs.length, 1);
  t.equal(recs[0]!.claim?.rel, 'widget/main/late.running.md');

  await r.dropPrompt('widget/main/other.prompt.md', '# Other\n', { ageMs: 5000 });
  const cancelled = await claimProcess(r, ['--limit', '1', '--wait'], { input: '' });
  t.equal(cancelled.exitCode, 0);
  t.equal(String(cancelled.stdout), '', 'no go line: nothing claimed');
  t.ok(await fs.stat(path.join(r.inbox, 'widget/main/other.prompt.md')), 'the prompt is still pending');
});

t.test('without a claim lock pv-claim refuses to claim, naming the two ways to get one', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/x.prompt.md', 'x');
  const res = await runBin('pv-claim', ['--config', r.configPath]);
  t.equal(res.code, 64);
  t.match(res.stderr, /claims only while holding a claim lock/);
  t.match(res.stderr, /pv-watcher --once/);
  t.match(res.stderr, /flock -n 9/);
  t.notMatch(res.stderr, /\n.*\n/, 'one line');
  const forged = await runBin('pv-claim', ['--config', r.configPath], { env: { PV_CLAIM_LOCK: 'not-held' } });
  t.equal(forged.code, 64, 'naming a lock it does not hold is no lock');
  t.same(await files(r.inbox), ['widget/main/x.prompt.md'], 'nothing claimed');
  t.equal((await runBin('pv-claim', ['--config', r.configPath, '--dry-run'])).records.length, 1, 'a dry run needs no lock');
});
