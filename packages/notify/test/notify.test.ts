import t, { type Test } from 'tap';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { binPath, claimLockedCommand, makeValetRoot, parseRecords, runBin, waitFor, type ValetRoot } from '@prompt-valet/testkit';
import type { PvRecord } from '@prompt-valet/core';
import { startWebhookServer, type WebhookServer } from './webhook-server.js';

/** A record as pv-settle writes it for a prompt that opened a PR. */
function settledRecord(i: number, over: Partial<PvRecord> = {}): PvRecord {
  return {
    v: 1,
    run_id: `20261130T040000Z-run${i}`,
    claim: { inbox: '/srv/prompt-valet/inbox', rel: `widget/main/p${i}.running.md`, path: `/srv/prompt-valet/inbox/widget/main/p${i}.running.md`, prompt_name: `p${i}.prompt.md`, prompt_rel: `widget/main/p${i}.prompt.md`, run_root: '/x', attempt: 1, claimed_at: '2026-11-30T04:00:00.000Z' },
    target: { owner: 'acme', repo: 'widget', branch: 'feature/x', repo_dir: '/r', clone_url: 'file:///o', agent_branch: 'codex/p-1', front_matter: {}, subdirs: [] },
    agent: { exit_code: 0, duration_ms: 1000, timed_out: false, idle_timed_out: false, aborted: false, model: 'gpt-5.1-codex-mini', sandbox: 'workspace-write', usage: { input_tokens: 100, output_tokens: 23, total_tokens: 123 } },
    publish: { outcome: 'pr_opened', branch: 'codex/p-1', pr_url: `https://github.com/acme/widget/pull/${i}` },
    settle: { state: 'done', path: `/srv/prompt-valet/finished/widget/main/p${i}.done.md`, outcome: 'pr_opened', settled_at: '2026-11-30T04:02:05.000Z' },
    ...over,
  };
}

async function withServer(t: Test, reply: Parameters<typeof startWebhookServer>[0]): Promise<WebhookServer> {
  const s = await startWebhookServer(reply);
  t.teardown(() => s.close());
  return s;
}

async function valet(t: Test, notify: Record<string, unknown>): Promise<ValetRoot> {
  const r = await makeValetRoot({ notify });
  t.teardown(() => r.cleanup());
  return r;
}

const lines = (recs: PvRecord[]) => recs.map((r) => JSON.stringify(r) + '\n').join('');

t.test('json, ntfy, slack and discord each get their own shape; the records pass through byte for byte', async (t) => {
  const s = await withServer(t, () => ({ status: 200 }));
  const r = await valet(t, {
    webhooks: [`${s.url}/hook`, `ntfy:${s.url}/valet-topic`, `slack:${s.url}/services/T0/B0/secret`, `discord:${s.url}/api/webhooks/1/secret`],
  });
  const failed = settledRecord(2, {
    error: { step: 'publish', code: 'push_rejected', message: 'git push: rejected <@here> & co', retryable: false },
    settle: { state: 'error', path: '/f/p2.error.md', settled_at: '2026-11-30T04:00:30.000Z' },
  });
  delete failed.publish;
  const input = lines([settledRecord(1), failed]) + 'not json at all\n' + JSON.stringify({ v: 1, run_id: 'x' }) + '\n';
  const res = await runBin('pv-notify', ['--config', r.configPath], { input });
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout, input, 'stdout is the input, unchanged, malformed line included');
  t.equal(s.received.length, 8, 'two settled records × four webhooks; the others send nothing');

  const at = (p: string) => s.received.filter((q) => q.path === p).map((q) => JSON.parse(q.body) as Record<string, unknown>);
  t.same(at('/hook')[0], {
    v: 1, event: 'prompt_settled', run_id: '20261130T040000Z-run1', repo: 'acme/widget', branch: 'feature/x', prompt: 'p1.prompt.md',
    state: 'done', outcome: 'pr_opened', pr_url: 'https://github.com/acme/widget/pull/1', duration_ms: 125_000, tokens: 123,
  });
  t.match(at('/hook')[1], { state: 'error', outcome: 'push_rejected', reason: 'git push: rejected <@here> & co', duration_ms: 30_000 });
  t.notOk('pr_url' in at('/hook')[1]!, 'no PR, no pr_url');

  const ntfy = at('/');
  t.equal(ntfy.length, 2, 'ntfy JSON publishing goes to the server root');
  t.match(ntfy[0], { topic: 'valet-topic', title: /p1\.prompt\.md \(acme\/widget feature\/x\) done: pr_opened/, click: 'https://github.com/acme/widget/pull/1', tags: ['white_check_mark'] });
  t.match(ntfy[0]!.message, /2 min 5 s, 123 tokens/);
  t.match(ntfy[1], { tags: ['x'], priority: 4, message: /rejected/ });

  const slack = at('/services/T0/B0/secret');
  t.same(Object.keys(slack[0]!), ['text']);
  t.match(slack[0]!.text, /<https:\/\/github\.com\/acme\/widget\/pull\/1>/);
  t.match(slack[1]!.text, /rejected &lt;@here&gt; &amp; co/, 'Slack markup in a reason is escaped');

  const discord = at('/api/webhooks/1/secret');
  t.match(discord[0], { content: /\*\*p1\.prompt\.md .* done: pr_opened\*\*/, allowed_mentions: { parse: [] } });
  for (const q of s.received) t.equal(q.headers['content-type'], 'application/json');
});

t.test('a slow server: each try ends at notify.timeout_seconds; the failure is logged once, redacted', async (t) => {
  const s = await withServer(t, () => ({ status: 200, delayMs: 5_000 }));
  const hook = `${s.url.replace('http://', 'http://user:pw@')}/slow?token=SECRET123`;
  const r = await valet(t, { webhooks: [hook], timeout_seconds: 0.3, retries: 1, retry_backoff_seconds: 0.05 });
  const input = lines([settledRecord(1), settledRecord(2)]);
  const res = await runBin('pv-notify', ['--config', r.configPath], { input });
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout, input);
  // No answer orders these requests before pv-notify's exit (it gave up on each): this server may read the last after it.
  await waitFor('four requests at the slow server', () => s.received.length >= 4, 10_000, 50).catch(() => undefined);
  t.equal(s.received.length, 4, 'two records, each tried twice (retries: 1)');
  const failures = res.stderr.split('\n').filter((l) => /failed: no answer within 0.3 s/.test(l));
  t.equal(failures.length, 1, `logged once: ${res.stderr}`);
  t.match(res.stderr, /0 sent, 2 failed/, 'the end says how many failed');
  t.notMatch(res.stderr, /SECRET123|pw@|user:/, 'no secret of the URL in the log');
  t.match(res.stderr, /\/slow\?…/);
});

t.test('a server that fails, then succeeds: the retry delivers it and nothing is logged as failed', async (t) => {
  const s = await withServer(t, (_q, i) => (i === 0 ? { status: 503, body: 'busy' } : i === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 204 }));
  const r = await valet(t, { webhooks: [`${s.url}/flaky`], retries: 3, retry_backoff_seconds: 0.05 });
  const res = await runBin('pv-notify', ['--config', r.configPath, '--verbose'], { input: lines([settledRecord(1)]) });
  t.equal(res.code, 0, res.stderr);
  t.equal(s.received.length, 3, '503, 429, then 204');
  t.same(new Set(s.received.map((q) => q.body)).size, 1, 'the same message each time');
  t.notMatch(res.stderr, /warn/);
  t.match(res.stderr, /1 sent/);
});

t.test('a 4xx answer is not retried, and its text is logged without control characters', async (t) => {
  const s = await withServer(t, () => ({ status: 404, body: 'no such\u001b[2J hook' }));
  const r = await valet(t, { webhooks: [`${s.url}/gone`], retries: 3, retry_backoff_seconds: 0.05 });
  const res = await runBin('pv-notify', ['--config', r.configPath], { input: lines([settledRecord(1)]) });
  t.equal(res.code, 0);
  t.equal(s.received.length, 1);
  t.match(res.stderr, /failed: HTTP 404 no such \[2J hook/);
  t.notMatch(res.stderr, /\u001b/, "the server's control characters do not reach the log");
});

t.test('bad webhook entries stop the tool with one line naming the entry (exit 78)', async (t) => {
  for (const [entry, why] of [['ftp://x/y', /the scheme is ftp, not http/], ['hooks.slack.com/x', /not a URL/], ['ntfy:https://ntfy.example/', /names its topic/]] as const) {
    const r = await valet(t, { webhooks: ['https://ok.example/h', entry] });
    const res = await runBin('pv-notify', ['--config', r.configPath], { input: '' });
    t.equal(res.code, 78, entry);
    t.match(res.stderr, /notify\.webhooks\[1\]: /, entry);
    t.match(res.stderr, why, entry);
  }
});

/** The steps between resolve and settle, faked: every record published nothing. */
const FAKE_SUCCESS = `
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (l) => { const r = JSON.parse(l); if (!r.error) r.publish = { outcome: 'no_changes' }; process.stdout.write(JSON.stringify(r) + '\\n'); });
`;

/** pv-claim | pv-resolve | fake | pv-settle [| pv-notify]: the real tools on a temporary valet root. */
async function settlePipeline(r: ValetRoot, withNotify: boolean) {
  const fake = path.join(r.root, 'fake-success.cjs');
  await fs.writeFile(fake, FAKE_SUCCESS);
  const node = JSON.stringify(process.execPath);
  const cfg = JSON.stringify(r.configPath);
  const steps = ['pv-claim', 'pv-resolve', fake, 'pv-settle', ...(withNotify ? ['pv-notify'] : [])].map((s) =>
    s.endsWith('.cjs') ? `${node} ${JSON.stringify(s)}` : `${node} ${JSON.stringify(binPath(s))} --config ${cfg}`,
  );
  // Under a claim lock, as pv-watcher runs a pipeline (docs/lifecycle.md).
  const res = await execa('bash', ['--norc', '-o', 'pipefail', '-c', claimLockedCommand(r.processed, steps.join(' | '))], { reject: false, timeout: 120_000, env: { NO_COLOR: '1' } });
  return { code: res.exitCode, stdout: String(res.stdout), stderr: String(res.stderr) };
}

t.test('pv-settle | pv-notify: every settled prompt is announced', async (t) => {
  const s = await withServer(t, () => ({ status: 200 }));
  const r = await valet(t, { webhooks: [`${s.url}/json`] });
  await r.dropPrompt('widget/main/a.prompt.md', 'a');
  await r.dropPrompt('widget/feature~y/b.prompt.md', 'b');
  const res = await settlePipeline(r, true);
  t.equal(res.code, 0, res.stderr);
  const records = parseRecords(res.stdout);
  t.equal(records.length, 2);
  const sent = s.received.map((q) => JSON.parse(q.body) as Record<string, unknown>).sort((a, b) => String(a.prompt).localeCompare(String(b.prompt)));
  t.match(sent, [
    { repo: 'acme/widget', branch: 'main', prompt: 'a.prompt.md', state: 'done', outcome: 'no_changes' },
    { repo: 'acme/widget', branch: 'feature/y', prompt: 'b.prompt.md', state: 'done', outcome: 'no_changes' },
  ]);
  for (const n of sent) t.type(n.duration_ms, 'number');
});

t.test('a webhook that never answers: while it hangs, later prompts still settle and are announced elsewhere', async (t) => {
  const hanging = await withServer(t, () => 'hang');
  const good = await withServer(t, () => ({ status: 200 }));
  const r = await valet(t, { webhooks: [`${hanging.url}/never`, `${good.url}/ok`], timeout_seconds: 600, retries: 0, drain_seconds: 0.5 });

  const notify = spawn(process.execPath, [binPath('pv-notify'), '--config', r.configPath], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const killer = setTimeout(() => notify.kill('SIGKILL'), 120_000);
  t.teardown(() => clearTimeout(killer));
  let out = '';
  let err = '';
  notify.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  notify.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => notify.on('close', (code) => resolve(code)));

  // Three prompts, settled one after another by the real tools; their
  // records go to the one pv-notify while the hanging webhook holds on.
  for (const name of ['one', 'two', 'three']) {
    await r.dropPrompt(`widget/main/${name}.prompt.md`, name);
    const settled = await settlePipeline(r, false);
    t.equal(settled.code, 0, settled.stderr);
    notify.stdin.write(settled.stdout + '\n');
    await waitFor(`${name} passed on`, () => out.includes(`"prompt_name":"${name}.prompt.md"`));
    await waitFor(`${name} announced to the good webhook`, () => good.received.some((q) => q.body.includes(`"prompt":"${name}.prompt.md"`)));
    // Sent to both at once: the hanging server may see it a moment after the good one.
    await waitFor(`${name} sent to the hanging webhook too`, () => hanging.received.some((q) => q.body.includes(`"prompt":"${name}.prompt.md"`)));
    t.ok(hanging.open() >= 1, `the hanging webhook still holds a request after ${name}`);
  }
  t.equal(hanging.received.length, 3, 'the hanging webhook got each notification too (concurrently)');
  notify.stdin.end();
  t.equal(await exited, 0, err);
  t.equal(parseRecords(out).length, 3);
  t.match(err, /3 notification\(s\) still in flight after 0.5 s/);
});
