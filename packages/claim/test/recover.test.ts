import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { expectErrno, readRetryEntry, readRunStatus, takeLock, writeClaimRecord, type PvRecord } from '@prompt-valet/core';
import { binPath, claimLockedCommand, makeValetRoot, parseRecords, runBin, shQuote, waitFor, type ValetRoot } from '@prompt-valet/testkit';

async function root(t: Test, overrides = {}): Promise<ValetRoot> {
  const r = await makeValetRoot(overrides);
  t.teardown(() => r.cleanup());
  return r;
}

const recover = (r: ValetRoot, args: string[] = []) => runBin('pv-claim', ['--config', r.configPath, '--recover', ...args]);

const claimCmd = (r: ValetRoot, args: string[] = []) =>
  [process.execPath, binPath('pv-claim'), '--config', r.configPath, ...args].map(shQuote).join(' ');

/**
 * A pipeline of its own, holding a claim lock as pv-watcher's do: its
 * pv-claim claims one prompt, then its shell stays (as the later steps
 * would, keeping fd 9 and so the lock), or exits (the lock is free).
 */
function holderGroup(t: Test, r: ValetRoot, out: string, stay: boolean): ChildProcess {
  const cmd = claimLockedCommand(r.processed, `${claimCmd(r, ['--limit', '1'])} > ${shQuote(out)}${stay ? '; exec sleep 300' : ''}`);
  const child = spawn('sh', ['-c', cmd], { detached: true, stdio: 'ignore' });
  const timer = setTimeout(() => killGroup(child), 120_000);
  t.teardown(() => {
    clearTimeout(timer);
    killGroup(child);
  });
  return child;
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch (err) {
    expectErrno(err, 'ESRCH');
    // already gone
  }
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

async function recordsIn(file: string): Promise<PvRecord[]> {
  try {
    return parseRecords(await fs.readFile(file, 'utf8'));
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return [];
  }
}

t.test('a claim whose pipeline was killed with SIGKILL is recovered and resumed under its run id; a live one is not', async (t) => {
  const r = await root(t, { watcher: { retry_backoff_seconds: 0 } });
  await r.dropPrompt('widget/main/a.prompt.md', 'prompt a');
  const a = holderGroup(t, r, path.join(r.root, 'a.jsonl'), true);
  const [recA] = await waitFor('pipeline a to claim', async () => { const recs = await recordsIn(path.join(r.root, 'a.jsonl')); return recs.length ? recs : undefined; });
  await r.dropPrompt('widget/main/b.prompt.md', 'prompt b');
  const b = holderGroup(t, r, path.join(r.root, 'b.jsonl'), true);
  const [recB] = await waitFor('pipeline b to claim', async () => { const recs = await recordsIn(path.join(r.root, 'b.jsonl')); return recs.length ? recs : undefined; });
  t.equal(recA!.claim!.prompt_rel, 'widget/main/a.prompt.md');
  t.equal(recB!.claim!.prompt_rel, 'widget/main/b.prompt.md');

  t.same((await recover(r)).records, [], 'both alive: nothing recovered');

  killGroup(a);
  await exited(a);
  const res = await recover(r);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.records.length, 1, 'exactly the dead claim');
  const rec = res.records[0]!;
  t.equal(rec.run_id, recA!.run_id);
  t.match(rec.error, { code: 'holder_died', retryable: true });
  t.match(rec.settle, { state: 'pending', path: path.join(r.inbox, 'widget/main/a.prompt.md'), attempts: 1 });
  t.equal(await fs.readFile(path.join(r.inbox, 'widget/main/a.prompt.md'), 'utf8'), 'prompt a', 'back to pending, intact');
  await t.resolves(fs.lstat(path.join(r.inbox, 'widget/main/b.running.md')), 'the live claim is untouched');
  t.match(await readRunStatus(recA!.claim!.run_root), { state: 'retry' });
  t.match(await readRetryEntry(r.processed, 'widget/main/a.prompt.md'), {
    attempts: 1,
    last_error: { code: 'holder_died' },
    resume_run_id: recA!.run_id,
  });
  t.same((await recover(r)).records, [], 'recovering again does nothing');
  t.same((await fs.readdir(path.join(r.processed, '.ledger', 'locks'))).filter((f) => f.startsWith('test-')).length, 1, "the dead pipeline's lock file is removed, the live one's kept");

  // The recovered prompt's next claim is attempt 2 of the same run (no backoff configured here).
  const again = await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed });
  t.equal(again.records[0]!.claim!.attempt, 2);
  t.equal(again.records[0]!.run_id, recA!.run_id, 'resumed: the same run id');
  t.equal(again.records[0]!.claim!.run_root, recA!.claim!.run_root, 'and the same run folder');
  t.equal(again.records[0]!.claim!.resumed, 1);
  t.match(await readRunStatus(recA!.claim!.run_root), { state: 'claimed', attempt: 2, resumed: 1 });
  killGroup(b);
  await exited(b);
});

t.test('a dead claim at the maximum attempts settles as error with the reason', async (t) => {
  const r = await root(t, { watcher: { max_attempts: 1 } });
  await r.dropPrompt('widget/main/a.prompt.md', 'prompt a');
  const a = holderGroup(t, r, path.join(r.root, 'a.jsonl'), false);
  await exited(a);
  const [claimRec] = await recordsIn(path.join(r.root, 'a.jsonl'));
  t.ok(claimRec, 'claimed before its pipeline ended');
  const res = await recover(r);
  t.equal(res.records.length, 1);
  const final = path.join(r.finished, 'widget/main/a.error.md');
  t.match(res.records[0]!.settle, { state: 'error', path: final });
  t.equal(await fs.readFile(final, 'utf8'), 'prompt a');
  t.match(await fs.readFile(path.join(r.finished, 'widget/main/a.error.txt'), 'utf8'), /holder_died[\s\S]*died during attempt 1/);
  t.match(await fs.readFile(path.join(claimRec!.claim!.run_root, 'error.md'), 'utf8'), /holder_died/);
  t.match(await readRunStatus(claimRec!.claim!.run_root), { state: 'error', final_path: final });
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'claims')), [], 'no claim record left');
});

t.test('three recoverers racing over 20 dead claims recover each exactly once', async (t) => {
  const r = await root(t);
  for (let i = 0; i < 20; i++) await r.dropPrompt(`widget/main/p${i}.prompt.md`, `p${i}`);
  const dead = spawn('sh', ['-c', claimLockedCommand(r.processed, `${claimCmd(r)} > /dev/null`)], {
    detached: true,
    stdio: 'ignore',
  });
  await exited(dead);
  const running = (await fs.readdir(path.join(r.inbox, 'widget/main'))).filter((f) => f.endsWith('.running.md'));
  t.equal(running.length, 20, 'all claimed by a pipeline that is gone');
  const results = await Promise.all([recover(r), recover(r), recover(r)]);
  const recs = results.flatMap((res) => res.records);
  t.equal(recs.length, 20, 'twenty recoveries in all');
  t.equal(new Set(recs.map((rec) => rec.run_id)).size, 20, 'none recovered twice');
  const names = (await fs.readdir(path.join(r.inbox, 'widget/main'))).sort();
  t.same(names, Array.from({ length: 20 }, (_, i) => `p${i}.prompt.md`).sort(), 'each back under its own name once');
});

t.test('a crash between the claim record and the move: the record is dropped, the prompt stays pending', async (t) => {
  const r = await root(t);
  const p = await r.dropPrompt('widget/main/x.prompt.md', 'x');
  await writeClaimRecord(r.processed, {
    v: 1,
    run_id: '20250101-000000-000-aaaaaaaa',
    rel: 'widget/main/x.running.md',
    prompt_rel: 'widget/main/x.prompt.md',
    ino: (await fs.lstat(p)).ino,
    liveness: { kind: 'local', lock: 'gone-pipeline' },
    attempt: 1,
    claimed_at: new Date().toISOString(),
    run_root: path.join(r.processed, '20250101-000000-000-aaaaaaaa'),
  });
  const res = await recover(r);
  t.equal(res.code, 0, res.stderr);
  t.same(res.records, [], 'nothing to move');
  t.same(await fs.readdir(path.join(r.inbox, 'widget/main')), ['x.prompt.md']);
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'claims')), [], 'record dropped');
  t.equal(await fs.readFile(p, 'utf8'), 'x');
});

t.test('a record from before claim locks (no liveness) counts as dead; a dispatched one is left alone', async (t) => {
  const r = await root(t);
  for (const [name, liveness] of [['old', undefined], ['queued', { kind: 'dispatched', stream: 'jobs', seq: 3 }]] as const) {
    const p = await r.dropPrompt(`widget/main/${name}.prompt.md`, name);
    const ino = (await fs.lstat(p)).ino;
    await fs.rename(p, path.join(r.inbox, `widget/main/${name}.running.md`));
    const id = name === 'old' ? '20250101-000000-000-cccccccc' : '20250101-000000-000-dddddddd';
    await writeClaimRecord(r.processed, {
      v: 1, run_id: id, rel: `widget/main/${name}.running.md`, prompt_rel: `widget/main/${name}.prompt.md`, ino,
      ...(liveness ? { liveness } : {}), attempt: 1, claimed_at: new Date().toISOString(), run_root: path.join(r.processed, id),
    });
  }
  const res = await recover(r);
  t.equal(res.records.length, 1);
  t.match(res.records[0], { run_id: '20250101-000000-000-cccccccc', settle: { state: 'pending' } });
  t.same((await fs.readdir(path.join(r.inbox, 'widget/main'))).sort(), ['old.prompt.md', 'queued.running.md']);
});

t.test('a running file with no claim record waits out the grace period', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/y.prompt.md', 'y');
  await fs.rename(path.join(r.inbox, 'widget/main/y.prompt.md'), path.join(r.inbox, 'widget/main/y.running.md'));
  t.same((await recover(r)).records, [], 'young: may be a claim being made');
  t.same((await recover(r, ['--grace-seconds', '0', '--dry-run'])).records.map((x) => x.dry_run), [true], 'dry run lists it');
  await t.resolves(fs.lstat(path.join(r.inbox, 'widget/main/y.running.md')), 'dry run changed nothing');
  const res = await recover(r, ['--grace-seconds', '0']);
  t.equal(res.records.length, 1);
  t.same(await fs.readdir(path.join(r.inbox, 'widget/main')), ['y.prompt.md']);
});

t.test('stale claim records whose lock is free are swept', async (t) => {
  const r = await root(t);
  await writeClaimRecord(r.processed, {
    v: 1,
    run_id: '20250101-000000-000-bbbbbbbb',
    rel: 'widget/main/never.running.md',
    prompt_rel: 'widget/main/never.prompt.md',
    ino: 1,
    liveness: { kind: 'local', lock: 'gone-pipeline' },
    attempt: 1,
    claimed_at: new Date().toISOString(),
    run_root: path.join(r.processed, '20250101-000000-000-bbbbbbbb'),
  });
  t.same((await recover(r)).records, []);
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'claims')), []);
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'locks')), [], 'its lock file too');
});

t.test('a crash between settling in place and the move into finished/ is finished by recovery', async (t) => {
  const r = await root(t);
  const text = '# Done but stranded\n';
  await r.dropPrompt('widget/main/stranded.prompt.md', text, { ageMs: 5000 });
  const out = path.join(r.root, 'claim.jsonl');
  const holder = holderGroup(t, r, out, false);
  await exited(holder);
  const [claimed] = await recordsIn(out);
  t.ok(claimed?.claim, 'claimed by a pipeline that is now gone');
  // pv-settle got as far as the rename in place, then the machine died.
  const dir = path.join(r.inbox, 'widget/main');
  await fs.rename(path.join(dir, 'stranded.running.md'), path.join(dir, 'stranded.done.md'));

  const res = await recover(r);
  t.equal(res.code, 0, res.stderr);
  t.match(res.records, [{ run_id: claimed!.run_id, settle: { state: 'done', recovered: true } }]);
  t.same(await fs.readdir(dir), [], 'nothing left in the inbox');
  t.equal(await fs.readFile(path.join(r.finished, 'widget/main/stranded.done.md'), 'utf8'), text, 'moved whole into finished/');
  const again = await recover(r);
  t.same(again.records, [], 'a second recovery finds nothing');
});

t.test('lock files: old, free and named by no record are swept; held, young or named ones stay', async (t) => {
  const r = await root(t);
  const dir = path.join(r.processed, '.ledger', 'locks');
  await fs.mkdir(dir, { recursive: true });
  const old = new Date(Date.now() - 2 * 3_600_000);
  for (const name of ['old-free', 'old-held', 'young-free']) await fs.writeFile(path.join(dir, `${name}.lock`), '');
  for (const name of ['old-free', 'old-held']) await fs.utimes(path.join(dir, `${name}.lock`), old, old);
  const held = await takeLock(path.join(dir, 'old-held.lock'));
  t.teardown(() => held?.release());
  t.equal((await recover(r)).code, 0);
  t.same((await fs.readdir(dir)).sort(), ['old-held.lock', 'young-free.lock']);
});
