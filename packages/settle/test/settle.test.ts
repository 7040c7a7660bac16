import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { readRetryEntry, readRunStatus, requeuePrompt, type PvRecord } from '@prompt-valet/core';
import { makeValetRoot, runBin, type ValetRoot } from '@prompt-valet/testkit';

async function root(t: Test, overrides = {}): Promise<ValetRoot> {
  const r = await makeValetRoot(overrides);
  t.teardown(() => r.cleanup());
  return r;
}

async function claimOne(r: ValetRoot, rel: string, text = 'prompt\n'): Promise<PvRecord> {
  await r.dropPrompt(rel, text);
  const res = await runBin('pv-claim', ['--config', r.configPath, '--limit', '1'], { claimLockIn: r.processed });
  if (res.records.length !== 1) throw new Error(`claim failed: ${res.stderr}`);
  return res.records[0]!;
}

const settle = (r: ValetRoot, recs: PvRecord[]) => runBin('pv-settle', ['--config', r.configPath], { input: recs });
const err = (code: string, retryable: boolean) => ({ step: 'publish', code, message: `${code} happened`, retryable });

t.test('success: done in finished/ under the same folder, status final', async (t) => {
  const r = await root(t);
  const rec = await claimOne(r, 'widget/main/sub/a.prompt.md', 'text a');
  const res = await settle(r, [{ ...rec, publish: { outcome: 'pr_opened', branch: 'codex/a', pr_url: 'https://x/pr/1', commit: 'abc' } }]);
  t.equal(res.code, 0, res.stderr);
  const final = path.join(r.finished, 'widget/main/sub/a.done.md');
  t.match(res.records[0]!.settle, { state: 'done', path: final, outcome: 'pr_opened' });
  t.equal(await fs.readFile(final, 'utf8'), 'text a');
  await t.rejects(fs.lstat(path.join(r.inbox, 'widget/main/sub/a.running.md')));
  const status = await readRunStatus(rec.claim!.run_root);
  t.match(status, { state: 'done', outcome: 'pr_opened', pr_url: 'https://x/pr/1', final_path: final });
  t.type(status!.durations_ms?.total, 'number');
  t.same(await fs.readdir(path.join(r.processed, '.ledger', 'claims')), [], 'claim record removed');

  const again = await settle(r, [{ ...rec, publish: { outcome: 'pr_opened', branch: 'codex/a', pr_url: 'https://x/pr/1' } }]);
  t.match(again.records[0]!.settle, { state: 'done', path: final, already: true }, 'settling twice does no harm');
  t.notOk(again.records[0]!.error);
  t.same(await fs.readdir(path.join(r.finished, 'widget/main/sub')), ['a.done.md']);
});

t.test('no_changes is a success; a name taken in finished/ gets a unique one', async (t) => {
  const r = await root(t);
  await fs.mkdir(path.join(r.finished, 'widget/main'), { recursive: true });
  await fs.writeFile(path.join(r.finished, 'widget/main/a.done.md'), 'older run');
  const rec = await claimOne(r, 'widget/main/a.prompt.md', 'newer');
  const res = await settle(r, [{ ...rec, publish: { outcome: 'no_changes', branch: 'codex/a' } }]);
  t.match(res.records[0]!.settle, { state: 'done', outcome: 'no_changes', path: path.join(r.finished, 'widget/main/a.2.done.md') });
  t.equal(await fs.readFile(path.join(r.finished, 'widget/main/a.done.md'), 'utf8'), 'older run', 'never overwritten');
  t.equal(await fs.readFile(path.join(r.finished, 'widget/main/a.2.done.md'), 'utf8'), 'newer');
});

t.test('a permanent failure: x.error.md, the reason beside it and in the run folder', async (t) => {
  const r = await root(t);
  const rec = await claimOne(r, 'widget/main/b.prompt.md');
  const res = await settle(r, [{ ...rec, error: { ...err('base_branch_missing', false), detail: 'git said no' } }]);
  const final = path.join(r.finished, 'widget/main/b.error.md');
  t.match(res.records[0]!.settle, { state: 'error', path: final, reason_path: path.join(r.finished, 'widget/main/b.error.txt') });
  t.match(res.records[0]!.error, { code: 'base_branch_missing' });
  const reason = await fs.readFile(path.join(r.finished, 'widget/main/b.error.txt'), 'utf8');
  t.match(reason, /base_branch_missing happened/);
  t.match(reason, /git said no/);
  t.match(await fs.readFile(path.join(rec.claim!.run_root, 'error.md'), 'utf8'), /base_branch_missing/);
  t.match(await readRunStatus(rec.claim!.run_root), { state: 'error', error: { code: 'base_branch_missing' } });
});

t.test('a retryable failure goes back to pending with a backoff, then errors after max_attempts', async (t) => {
  const r = await root(t, { watcher: { max_attempts: 2, retry_backoff_seconds: 3600 } });
  const rec = await claimOne(r, 'widget/main/c.prompt.md', 'c text');
  const res = await settle(r, [{ ...rec, error: err('network', true) }]);
  const pending = path.join(r.inbox, 'widget/main/c.prompt.md');
  t.match(res.records[0]!.settle, { state: 'pending', path: pending, attempts: 1 });
  t.equal(await fs.readFile(pending, 'utf8'), 'c text');
  const entry = await readRetryEntry(r.processed, 'widget/main/c.prompt.md');
  t.match(entry, { attempts: 1, last_error: { code: 'network' }, resume_run_id: rec.run_id });
  t.ok(Date.parse(entry!.not_before!) > Date.now() + 3000_000, 'backoff of an hour');
  t.match(await readRunStatus(rec.claim!.run_root), { state: 'retry' });
  t.same((await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed })).records, [], 'not claimed during the backoff');

  await r.configure({ watcher: { retry_backoff_seconds: 0 } });
  const { not_before: _gone, ...noWait } = entry!;
  await fs.writeFile(path.join(r.processed, '.ledger', 'pending', (await fs.readdir(path.join(r.processed, '.ledger', 'pending')))[0]!), JSON.stringify(noWait));
  const second = (await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed })).records[0]!;
  t.equal(second.claim!.attempt, 2, 'attempt count kept');
  t.equal(second.run_id, rec.run_id, 'the retry resumes the same run');
  const last = await settle(r, [{ ...second, error: err('network', true) }]);
  t.match(last.records[0]!.settle, { state: 'error', path: path.join(r.finished, 'widget/main/c.error.md') });
  t.match(last.records[0]!.error, { message: /gave up after 2 of 2 attempts/ });
});

t.test('aborted_shutdown goes back to pending and does not count', async (t) => {
  const r = await root(t);
  const rec = await claimOne(r, 'widget/main/d.prompt.md');
  const res = await settle(r, [{ ...rec, error: { step: 'run-codex', code: 'aborted_shutdown', message: 'stopping', retryable: true } }]);
  t.match(res.records[0]!.settle, { state: 'pending', attempts: 0 });
  t.notOk(res.records[0]!.settle!.not_before, 'no backoff');
  const next = await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed });
  t.equal(next.records[0]!.claim!.attempt, 1);
});

t.test('a retry never overwrites a new prompt dropped under the same name', async (t) => {
  const r = await root(t);
  const rec = await claimOne(r, 'widget/main/e.prompt.md', 'first');
  await r.dropPrompt('widget/main/e.prompt.md', 'second');
  const res = await settle(r, [{ ...rec, error: err('network', true) }]);
  t.equal(res.records[0]!.settle!.path, path.join(r.inbox, 'widget/main/e.2.prompt.md'));
  t.equal(await fs.readFile(path.join(r.inbox, 'widget/main/e.prompt.md'), 'utf8'), 'second');
  t.equal(await fs.readFile(path.join(r.inbox, 'widget/main/e.2.prompt.md'), 'utf8'), 'first');
});

t.test('records without a claim, or pointing outside the valet, are refused', async (t) => {
  const r = await root(t);
  const malformed = { v: 1, error: { step: 'input', code: 'malformed_record', message: 'm', retryable: false } };
  const foreign = { v: 1, run_id: 'r', claim: { inbox: '/etc', rel: 'passwd', path: '/etc/passwd', prompt_name: 'p', prompt_rel: 'passwd', run_root: '/tmp/x', attempt: 1, claimed_at: '' } };
  const real = await claimOne(r, 'widget/main/g.prompt.md');
  const elsewhere = { ...real, claim: { ...real.claim!, path: path.join(r.root, 'outside.running.md') } };
  const otherRoot = { ...real, claim: { ...real.claim!, run_root: '/tmp/elsewhere' } };
  const res = await settle(r, [malformed, { v: 1 }, foreign, elsewhere, otherRoot]);
  t.equal(res.code, 0);
  t.same(res.records[0], malformed, 'the first error is kept');
  t.match(res.records[1]!.error, { step: 'settle', code: 'not_claimed' });
  t.match(res.records[2]!.error, { step: 'settle', code: 'bad_run_id' });
  t.match(res.records[3]!.error, { step: 'settle', code: 'foreign_path', message: /claim\.path/ });
  t.match(res.records[4]!.error, { step: 'settle', code: 'foreign_path', message: /claim\.run_root/ });
  await t.resolves(fs.lstat(path.join(r.inbox, 'widget/main/g.running.md')), 'nothing was moved for them');
});

t.test('requeuePrompt puts a settled prompt back to pending, never overwriting', async (t) => {
  const r = await root(t);
  const rec = await claimOne(r, 'widget/main/f.prompt.md', 'f text');
  await settle(r, [{ ...rec, error: err('bad', false) }]);
  await r.dropPrompt('widget/main/f.prompt.md', 'someone else');
  const opts = { inbox: r.inbox, finished: r.finished, processed: r.processed };
  const dest = await requeuePrompt({ ...opts, finishedRel: 'widget/main/f.error.md' });
  t.equal(dest, path.join(r.inbox, 'widget/main/f.2.prompt.md'));
  t.equal(await fs.readFile(dest, 'utf8'), 'f text');
  t.equal(await fs.readFile(path.join(r.inbox, 'widget/main/f.prompt.md'), 'utf8'), 'someone else');
  await t.rejects(requeuePrompt({ ...opts, finishedRel: '../config/prompt-valet.yaml' }), { code: 'requeue_refused' });
  await t.rejects(requeuePrompt({ ...opts, finishedRel: 'widget/main/nope.error.md' }), { code: 'requeue_refused' });
  await t.rejects(requeuePrompt({ ...opts, finishedRel: 'widget/../../x.error.md' }));
});
