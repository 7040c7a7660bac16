// Issue 13: the lifecycle must not depend on who owns a prompt file. The
// service user here is `nobody` (65534), the operator root; Debian's
// fs.protected_hardlinks = 1 makes link(2) refuse files the caller does not own.
import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { execa } from 'execa';
import { ledgerPaths, retryEntryKey, readRetryEntry, requeuePrompt, writeRetryEntry } from '@prompt-valet/core';
import { binPath, claimLockedCommand, makeValetRoot, parseRecords, shQuote, type ValetRoot } from '@prompt-valet/testkit';

const NOBODY = 65534;
const AS_NOBODY = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const cleanEnv = ['env', '-i', `PATH=${process.env.PATH}`, 'HOME=/nonexistent'];
const skip = process.getuid?.() !== 0 ? 'needs root to run the tools as another user' : false;

/** Run `command` (a shell line) as nobody, under a claim lock of the valet. */
async function asServiceUser(r: ValetRoot, command: string, input = '') {
  const script = claimLockedCommand(r.processed, command);
  // env -i: tap injects its process-info hooks into every child's environment.
  const res = await execa('setpriv', [...AS_NOBODY, ...cleanEnv, 'NO_COLOR=1', 'sh', '-c', script], { input, reject: false, timeout: 120_000 });
  return { code: res.exitCode, stderr: String(res.stderr), records: parseRecords(String(res.stdout)) };
}

const tool = (r: ValetRoot, name: string, args: string[] = []) =>
  [process.execPath, binPath(name), '--config', r.configPath, ...args].map(shQuote).join(' ');

/** A valet whose folders the service user may write, with the prompt files owned by root. */
async function valet(t: Test): Promise<ValetRoot> {
  const r = await makeValetRoot({ watcher: { retry_backoff_seconds: 0 } });
  t.teardown(() => r.cleanup());
  await fs.chmod(r.root, 0o755);
  const ledger = path.join(r.processed, '.ledger');
  for (const dir of [r.inbox, r.processed, ledger, path.join(ledger, 'locks'), r.finished, path.join(r.inbox, 'widget'), path.join(r.inbox, 'widget/main')]) {
    await fs.mkdir(dir, { recursive: true });
    await fs.chown(dir, NOBODY, NOBODY);
  }
  await fs.chmod(r.configPath, 0o644);
  return r;
}

t.test('fs.protected_hardlinks is on, so link(2) would refuse these files', { skip }, async (t) => {
  t.equal((await fs.readFile('/proc/sys/fs/protected_hardlinks', 'utf8')).trim(), '1');
});

t.test('a prompt owned by root is claimed, retried, claimed again (resumed), settled and requeued by a non-root service user', { skip }, async (t) => {
  const r = await valet(t);
  const p = await r.dropPrompt('widget/main/rootfile.prompt.md', '# owned by root\n', { ageMs: 5000 });
  t.equal((await fs.stat(p)).uid, 0, 'the operator (root) owns it');

  const claimed = await asServiceUser(r, tool(r, 'pv-claim'));
  t.equal(claimed.code, 0, claimed.stderr);
  t.equal(claimed.records.length, 1, 'claimed');
  const rec = claimed.records[0]!;
  t.equal((await fs.stat(path.join(r.inbox, 'widget/main/rootfile.running.md'))).uid, 0, 'the same file, still root\'s');

  const retry = { ...rec, error: { step: 'publish', code: 'network', message: 'push failed', retryable: true } };
  const retried = await asServiceUser(r, tool(r, 'pv-settle'), JSON.stringify(retry) + '\n');
  t.match(retried.records[0]?.settle, { state: 'pending', path: p }, retried.stderr);
  t.match(await readRetryEntry(r.processed, 'widget/main/rootfile.prompt.md'), { resume_run_id: rec.run_id });

  const again = await asServiceUser(r, tool(r, 'pv-claim'));
  t.equal(again.records[0]?.run_id, rec.run_id, 'the retry resumes the run');
  const done = await asServiceUser(r, tool(r, 'pv-settle'), JSON.stringify({ ...again.records[0], publish: { outcome: 'no_changes' } }) + '\n');
  const final = path.join(r.finished, 'widget/main/rootfile.done.md');
  t.match(done.records[0]?.settle, { state: 'done', path: final }, done.stderr);
  t.equal(await fs.readFile(final, 'utf8'), '# owned by root\n');
  t.equal((await fs.stat(final)).uid, 0, 'never copied: still root\'s file');

  // pv-web's retry, as the service user.
  const requeueJs = JSON.stringify(path.join(path.dirname(binPath('pv-claim')), '..', '..', 'core', 'dist', 'prompt-ledger.js'));
  const script = `import { requeuePrompt } from ${requeueJs}; console.log(await requeuePrompt(${JSON.stringify({ inbox: r.inbox, finished: r.finished, processed: r.processed, finishedRel: 'widget/main/rootfile.done.md' })}));`;
  const requeued = await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--input-type=module', '-e', script], { reject: false, timeout: 60_000 });
  t.equal(String(requeued.stdout).trim(), p, String(requeued.stderr));
  t.equal((await fs.stat(p)).uid, 0, 'back in the inbox, still root\'s');
  t.ok(requeuePrompt, 'the same function pv-web calls');
});

t.test("an operator's 0600 prompt is claimed and settled as an error naming its owner and mode", { skip }, async (t) => {
  const r = await valet(t);
  const p = await r.dropPrompt('widget/main/private.prompt.md', 'secret prompt', { ageMs: 5000 });
  await fs.chmod(p, 0o600);
  const res = await asServiceUser(r, `${tool(r, 'pv-claim')} | ${tool(r, 'pv-settle')}`);
  t.equal(res.code, 0, res.stderr);
  t.match(res.records[0]?.error, { code: 'prompt_unreadable', retryable: false });
  const reason = await fs.readFile(path.join(r.finished, 'widget/main/private.error.txt'), 'utf8');
  t.match(reason, /owned by root with mode 0600/);
  t.match(reason, /the service user nobody cannot read/, reason);
  t.match(reason, /chmod 0644/);
  t.equal(await fs.readFile(path.join(r.finished, 'widget/main/private.error.md'), 'utf8'), 'secret prompt', 'kept whole');
  t.notMatch(res.stderr, /internal error|\n\s+at /, 'no stack trace');
});

t.test('a folder the service user cannot write: one line, once across runs, no stack trace; other folders go on', { skip }, async (t) => {
  const r = await valet(t);
  const locked = path.join(r.inbox, 'widget', 'locked');
  await fs.mkdir(locked, { mode: 0o755 }); // root's, not writable for nobody
  await r.dropPrompt('widget/locked/stuck.prompt.md', 'x', { ageMs: 5000 });
  await r.dropPrompt('widget/main/fine.prompt.md', 'y', { ageMs: 5000 });
  const hidden = path.join(r.inbox, 'widget', 'private');
  await fs.mkdir(hidden, { mode: 0o700 }); // root's, not even readable for nobody
  await r.dropPrompt('widget/private/unseen.prompt.md', 'z', { ageMs: 5000 });
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await asServiceUser(r, tool(r, 'pv-claim')));
  t.equal(runs[0]!.code, 0, runs[0]!.stderr);
  t.equal(runs[0]!.records.length, 1, 'the writable folder was claimed from');
  t.equal(runs[0]!.records[0]!.claim?.prompt_rel, 'widget/main/fine.prompt.md');
  const lines = runs.map((run) => run.stderr.split('\n').filter((l) => /locked/.test(l)));
  t.equal(lines[0]!.length, 1, 'reported in one line');
  t.match(lines[0]![0], /widget\/locked \(owner root, mode 0755\): nobody may not rename files in it \(EACCES\); make it writable for nobody/);
  t.same([lines[1], lines[2]], [[], []], 'not again on the next runs');
  const unreadable = runs.map((run) => run.stderr.split('\n').filter((l) => /widget\/private/.test(l)));
  t.equal(unreadable[0]!.length, 1, 'an unreadable folder: one line');
  t.match(unreadable[0]![0], /cannot look into .*widget\/private \(owner root, mode 0700\): nobody may not read it/);
  t.same([unreadable[1], unreadable[2]], [[], []], 'once');
  for (const run of runs) t.notMatch(run.stderr, /internal error|\n\s+at /, 'no stack trace');
  await t.resolves(fs.stat(path.join(locked, 'stuck.prompt.md')), 'the prompt is untouched');
});

t.test('a finished/ folder the service user cannot write: settle fails in one line, recovery says so once, then finishes once fixed', { skip }, async (t) => {
  const r = await valet(t);
  await r.dropPrompt('widget/main/late.prompt.md', 'late', { ageMs: 5000 });
  const blocked = path.join(r.finished, 'widget', 'main');
  await fs.mkdir(blocked, { recursive: true, mode: 0o755 }); // root's
  const res = await asServiceUser(r, `${tool(r, 'pv-claim')} | ${tool(r, 'pv-settle')}`);
  t.equal(res.code, 0, res.stderr);
  t.match(res.records[0]?.error, { step: 'settle', code: 'permission_denied', message: /widget\/main \(owner root, mode 0755\): nobody may not/ });
  t.notMatch(res.stderr, /internal error|\n\s+at /, 'no stack trace');
  await t.resolves(fs.stat(path.join(r.inbox, 'widget/main/late.done.md')), 'settled in place, waiting for the move');

  const recover = () => asServiceUser(r, tool(r, 'pv-claim', ['--recover']));
  const first = await recover();
  const second = await recover();
  t.equal(first.stderr.split('\n').filter((l) => /cannot recover/.test(l)).length, 1, first.stderr);
  t.equal(second.stderr.split('\n').filter((l) => /cannot recover/.test(l)).length, 0, 'not again');
  await fs.chown(blocked, NOBODY, NOBODY);
  const fixed = await recover();
  t.match(fixed.records, [{ settle: { state: 'done', recovered: true } }], fixed.stderr);
  t.equal(await fs.readFile(path.join(blocked, 'late.done.md'), 'utf8'), 'late');
});

t.test('a retry entry the service user may not read surfaces in one line; it never counts as none (which would reset the attempts)', { skip }, async (t) => {
  const r = await valet(t);
  const rel = 'widget/main/again.prompt.md';
  await r.dropPrompt(rel, 'again', { ageMs: 5000 });
  const { ino } = await fs.stat(path.join(r.inbox, rel));
  await writeRetryEntry(r.processed, { v: 1, prompt_rel: rel, ino, attempts: 2, updated_at: new Date().toISOString() });
  const entries = ledgerPaths(r.processed).retryEntries;
  await fs.chown(entries, NOBODY, NOBODY);
  const entry = path.join(entries, `${retryEntryKey(rel)}.json`);
  await fs.chmod(entry, 0o600); // root's, unreadable to nobody

  const res = await asServiceUser(r, tool(r, 'pv-claim'));
  t.same(res.records, [], 'not claimed as a first attempt');
  t.not(res.code, 0, 'pv-claim says something is wrong');
  t.match(res.stderr, new RegExp(`${retryEntryKey(rel)}\\.json \\(owner root, mode 0600\\): nobody may not read it`));
  t.notMatch(res.stderr, /internal error|\n\s+at /, 'no stack trace');
  await t.resolves(fs.stat(path.join(r.inbox, rel)), 'the prompt waits in the inbox');

  await fs.chown(entry, NOBODY, NOBODY);
  const fixed = await asServiceUser(r, tool(r, 'pv-claim'));
  t.match(fixed.records, [{ claim: { prompt_rel: rel, attempt: 3 } }], `${fixed.stderr}: the count goes on once it may read it`);
});
