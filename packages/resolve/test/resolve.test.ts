import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { cloneUrl, HOSTILE_NAMES, type PvRecord } from '@prompt-valet/core';
import { HOSTILE_INBOX_PATHS, makeValetRoot, runBin, type ValetRoot } from '@prompt-valet/testkit';
import { placeOf } from '../src/resolve.js';

async function root(t: Test, overrides = {}): Promise<ValetRoot> {
  const r = await makeValetRoot(overrides);
  t.teardown(() => r.cleanup());
  return r;
}

/** Claim everything in the inbox with the real pv-claim, then resolve those records. */
async function claimAndResolve(r: ValetRoot): Promise<PvRecord[]> {
  const claimed = await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed });
  const res = await runBin('pv-resolve', ['--config', r.configPath], { input: claimed.records });
  if (res.code !== 0) throw new Error(res.stderr);
  return res.records;
}

t.test('legacy layout: repo/main/P1c2-b.prompt.md resolves with the default owner', async (t) => {
  const r = await root(t);
  await r.dropPrompt('prompt-valet/main/P1c2-b.prompt.md', 'do things\n');
  const [rec] = await claimAndResolve(r);
  t.notOk(rec!.error);
  t.match(rec!.target, {
    owner: 'acme',
    repo: 'prompt-valet',
    branch: 'main',
    repo_dir: path.join(r.repos, 'acme', 'prompt-valet'),
    clone_url: `file://${path.join(r.root, 'origins')}/acme/prompt-valet.git`,
    agent_branch: `codex/p1c2-b-${rec!.run_id}`,
    front_matter: {},
  });
  const status = JSON.parse(await fs.readFile(path.join(rec!.claim!.run_root, 'status.json'), 'utf8'));
  t.match(status, { state: 'resolved', owner: 'acme', repo: 'prompt-valet', branch: 'main', agent_branch: rec!.target!.agent_branch });
});

t.test('multi_owner: nova-rey/prompt-valet/main/x.prompt.md', async (t) => {
  const r = await root(t, { inbox_mode: 'multi_owner', watcher: { git_protocol: 'https', git_default_host: 'github.com' } });
  await r.dropPrompt('nova-rey/prompt-valet/main/x.prompt.md', 'x');
  const [rec] = await claimAndResolve(r);
  t.match(rec!.target, {
    owner: 'nova-rey',
    repo: 'prompt-valet',
    branch: 'main',
    repo_dir: path.join(r.repos, 'nova-rey', 'prompt-valet'),
    clone_url: 'https://github.com/nova-rey/prompt-valet.git',
  });
});

t.test('too shallow: legacy prompt-valet.md-like files and multi_owner prompt-valet/x.prompt.md', async (t) => {
  const legacy = await root(t);
  await legacy.dropPrompt('prompt-valet.prompt.md', 'x');
  await legacy.dropPrompt('prompt-valet/x.prompt.md', 'x');
  const recs = await claimAndResolve(legacy);
  t.equal(recs.length, 2);
  for (const rec of recs) t.match(rec.error, { step: 'resolve', code: 'path_too_shallow', retryable: false });
  const multi = await root(t, { inbox_mode: 'multi_owner' });
  await multi.dropPrompt('prompt-valet/main/x.prompt.md', 'x');
  const [m] = await claimAndResolve(multi);
  t.match(m!.error, { code: 'path_too_shallow', message: /<owner>\/<repo>\/<branch>/ });
});

t.test('branch folders: feature~x is feature/x; subfolders below are the operator\'s', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/feature~login/ui/forms/Fix Form!.prompt.md', 'x');
  const [rec] = await claimAndResolve(r);
  t.match(rec!.target, { repo: 'widget', branch: 'feature/login', subdirs: ['ui', 'forms'] });
  t.match(rec!.target!.agent_branch, /^codex\/fix-form-\d{8}-/);
});

t.test('front matter is carried; malformed front matter is an error record', async (t) => {
  const r = await root(t, { watcher: { agent_branch_prefix: 'bot/' } });
  await r.dropPrompt('widget/main/a.prompt.md', '---\ntitle: Fix it\ndraft: true\nlabels: [bug, ui]\ntimeout: 60\n---\nbody\n');
  await r.dropPrompt('widget/main/b.prompt.md', '---\ntitle: [unclosed\n---\nbody\n');
  await r.dropPrompt('widget/main/c.prompt.md', '---\ndraft: maybe\n---\nbody\n');
  const recs = await claimAndResolve(r);
  const by = (stem: string) => recs.find((x) => x.claim!.prompt_rel === `widget/main/${stem}.prompt.md`)!;
  t.same(by('a').target!.front_matter, { title: 'Fix it', draft: true, labels: ['bug', 'ui'], timeout: 60 });
  t.match(by('a').target!.agent_branch, /^bot\/a-/);
  t.match(by('b').error, { code: 'bad_front_matter', retryable: false });
  t.match(by('c').error, { code: 'bad_front_matter', message: /draft/ });
});

t.test('front matter may narrow the operator\'s limits, never widen them', async (t) => {
  const r = await root(t, { watcher: { runner_sandbox: 'workspace-write', runner_timeout_seconds: 600, allowed_models: ['small-model'] } });
  await r.dropPrompt('widget/main/narrow.prompt.md', '---\nsandbox: read-only\ntimeout: 60\nmodel: small-model\n---\nbody\n');
  await r.dropPrompt('widget/main/sandbox.prompt.md', '---\nsandbox: danger-full-access\n---\nbody\n');
  await r.dropPrompt('widget/main/timeout.prompt.md', '---\ntimeout: 999999999\n---\nbody\n');
  await r.dropPrompt('widget/main/option.prompt.md', '---\nmodel: "--dangerously-bypass-approvals-and-sandbox"\n---\nbody\n');
  await r.dropPrompt('widget/main/typo.prompt.md', '---\nsandox: read-only\n---\nbody\n');
  const recs = await claimAndResolve(r);
  const by = (stem: string) => recs.find((x) => x.claim!.prompt_rel === `widget/main/${stem}.prompt.md`)!;
  t.same(by('narrow').target!.front_matter, { sandbox: 'read-only', timeout: 60, model: 'small-model' });
  t.match(by('sandbox').error, { step: 'resolve', code: 'bad_front_matter', retryable: false, message: /sandbox: .*watcher.runner_sandbox is workspace-write/ });
  t.match(by('timeout').error, { code: 'bad_front_matter', message: /timeout: got 999999999, expected at most 600 seconds/ });
  t.match(by('option').error, { code: 'bad_front_matter', message: /model: .*expected a model name/ });
  t.match(by('typo').error, { code: 'bad_front_matter', message: /"sandox" is not a known key/ });
  for (const stem of ['sandbox', 'timeout', 'option', 'typo']) t.notOk(by(stem).target, `${stem}: no target`);
});

t.test('a prompt larger than limits.max_prompt_bytes is refused without being read', async (t) => {
  const r = await root(t, { limits: { max_prompt_bytes: 1000 } });
  await r.dropPrompt('widget/main/big.prompt.md', 'x'.repeat(1001));
  await r.dropPrompt('widget/main/fits.prompt.md', 'x'.repeat(1000));
  const recs = await claimAndResolve(r);
  const by = (stem: string) => recs.find((x) => x.claim!.prompt_rel === `widget/main/${stem}.prompt.md`)!;
  t.match(by('big').error, { step: 'resolve', code: 'prompt_too_large', retryable: false, message: /1001 bytes, more than limits.max_prompt_bytes \(1000\)/ });
  t.notOk(by('fits').error);
});

t.test('every hostile path from the shared table is a clear, non-retryable error', async (t) => {
  const r = await root(t);
  for (const h of HOSTILE_INBOX_PATHS) await r.dropPrompt(h.rel, `hostile: ${h.why}`);
  const recs = await claimAndResolve(r);
  t.equal(recs.length, HOSTILE_INBOX_PATHS.length, 'each claimed once');
  for (const h of HOSTILE_INBOX_PATHS) {
    const rec = recs.find((x) => x.claim!.prompt_rel === h.rel);
    t.match(rec?.error, { step: 'resolve', code: h.code, retryable: false }, `${JSON.stringify(h.rel)}: ${h.why}`);
    t.notOk(rec?.target, 'no target');
  }
});

t.test("core's hostile names as repository and branch folders", async (t) => {
  const r = await root(t);
  // Only names that can be one folder on Linux (no "/", NUL, ".", "..", empty, > 255 bytes).
  const usable = HOSTILE_NAMES.filter((h) => h.name && !/[/\0]/.test(h.name) && h.name !== '.' && h.name !== '..' && Buffer.byteLength(h.name) <= 255);
  t.ok(usable.length >= 10, 'most of the table is usable as folder names');
  for (const [i, h] of usable.entries()) {
    await r.dropPrompt(`${h.name}/main/r${i}.prompt.md`, h.why);
    await r.dropPrompt(`widget/${h.name}/b${i}.prompt.md`, h.why);
  }
  const recs = await claimAndResolve(r);
  t.equal(recs.length, usable.length * 2, 'every one claimed');
  for (const [i, h] of usable.entries()) {
    const asRepo = recs.find((x) => x.claim!.prompt_rel === `${h.name}/main/r${i}.prompt.md`);
    t.match(asRepo?.error, { code: 'bad_repo', retryable: false }, `repo ${JSON.stringify(h.name)}: ${h.why}`);
    const asBranch = recs.find((x) => x.claim!.prompt_rel === `widget/${h.name}/b${i}.prompt.md`);
    if (h.why.startsWith('ok-as-branch')) t.equal(asBranch?.target?.branch, h.name, `branch ${JSON.stringify(h.name)} is legal in git`);
    else t.match(asBranch?.error, { code: 'bad_branch', retryable: false }, `branch ${JSON.stringify(h.name)}: ${h.why}`);
  }
});

t.test('records that failed earlier pass through; a record without a claim fails', async (t) => {
  const r = await root(t);
  const failed = { v: 1, run_id: 'x', error: { step: 'claim', code: 'boom', message: 'm', retryable: true } };
  const res = await runBin('pv-resolve', ['--config', r.configPath], { input: [failed, { v: 1 }] });
  t.equal(res.code, 0);
  t.same(res.records[0], failed);
  t.match(res.records[1]!.error, { step: 'resolve', code: 'not_claimed' });
});

t.test('placeOf and cloneUrl, as data', async (t) => {
  const legacy = { inbox_mode: 'legacy_single_owner' as const, git_owner: 'acme' };
  t.match(placeOf('r/main/x.running.md', legacy), { owner: 'acme', repo: 'r', branch: 'main', subdirs: [] });
  t.throws(() => placeOf('r/main/x.running.md', { ...legacy, git_owner: '' }), { code: 'owner_not_configured' });
  t.throws(() => placeOf('r/../x.running.md', legacy), { code: 'bad_path' });
  t.throws(() => placeOf('r/main/.hid/x.running.md', legacy), { code: 'bad_path' });
  const cases: [Parameters<typeof cloneUrl>[0], string, string][] = [
    ['https', 'github.com', 'https://github.com/o/r.git'],
    ['http', 'git.local:8080', 'http://git.local:8080/o/r.git'],
    ['ssh', 'github.com', 'git@github.com:o/r.git'],
    ['git', '127.0.0.1:9418', 'git://127.0.0.1:9418/o/r.git'],
    ['file', '/srv/origins/', 'file:///srv/origins/o/r.git'],
  ];
  for (const [proto, host, url] of cases) t.equal(cloneUrl(proto, host, 'o', 'r'), url, proto);
});

t.test('resume: a run that resolved once gets the recorded target back, the same agent branch', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/again.prompt.md', 'x');
  const claimed = await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed });
  const first = await runBin('pv-resolve', ['--config', r.configPath], { input: claimed.records });
  const rec = first.records[0]!;
  t.notOk(rec.error, JSON.stringify(rec.error));
  t.ok(await fs.stat(path.join(rec.claim!.run_root, 'steps', 'resolve.json')), 'the completion is recorded');
  // the config changed between tries: a resumed run keeps its branch
  await r.configure({ watcher: { agent_branch_prefix: 'other/' } });
  const again = await runBin('pv-resolve', ['--config', r.configPath], { input: claimed.records });
  t.same(again.records[0]!.target, rec.target);
  t.match(again.records[0]!.target!.agent_branch, /^codex\//);
});

t.test('forged records naming places outside the valet fail with foreign_path', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/forged.prompt.md', 'x');
  const claimed = (await runBin('pv-claim', ['--config', r.configPath], { claimLockIn: r.processed })).records[0]!;
  const elsewhere = path.join(r.root, 'elsewhere');
  const forged: PvRecord[] = [
    { ...claimed, claim: { ...claimed.claim!, run_root: elsewhere } },
    { ...claimed, claim: { ...claimed.claim!, path: '/etc/passwd' } },
    { ...claimed, claim: { ...claimed.claim!, inbox: elsewhere } },
  ];
  const res = await runBin('pv-resolve', ['--config', r.configPath], { input: forged });
  t.equal(res.records.length, 3);
  for (const out of res.records) t.match(out.error, { step: 'resolve', code: 'foreign_path', retryable: false });
  await t.rejects(fs.stat(path.join(claimed.claim!.run_root, 'steps', 'resolve.json')), 'nothing recorded for a forged record');
});
