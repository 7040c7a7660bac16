import t, { type Test } from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { makeValetRoot, runBin, type ValetRoot } from '@prompt-valet/testkit';
import { bearerToken, isLoopbackHost, tokenMatches } from '../src/auth.js';
import { safeStem } from '../src/submit.js';
import { multipart, request, startWeb, type WebServer } from './fixtures/web-server.js';

const TOKEN = 'web-token-0123456789abcdef';

/** A valet root with the branch folders pv-tree would have made, and pv-web on it. */
async function setup(t: Test, overrides: Record<string, unknown> = {}, args: string[] = []): Promise<{ root: ValetRoot; web: WebServer }> {
  const root = await makeValetRoot({ web: { max_upload_bytes: 4096 }, ...overrides }, 'pv-web-hostile-');
  t.teardown(() => root.cleanup());
  for (const d of ['widget/main', 'widget/feature~x', 'gadget/dev']) await fsp.mkdir(path.join(root.inbox, d), { recursive: true });
  const web = await startWeb(root.configPath, { args });
  t.teardown(() => web.stop());
  return { root, web };
}

/** Every file under a folder, relative to it (hidden ones too). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(path.relative(dir, path.join(e.parentPath ?? e.path, e.name)));
  }
  return out.sort();
}

const postJson = (web: WebServer, body: unknown, headers: Record<string, string> = {}) =>
  request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

t.test('units: safe names, loopback hosts, token comparison', async (t) => {
  t.equal(safeStem('../../etc/passwd.md'), 'passwd');
  t.equal(safeStem('..\\..\\Fix Login!.prompt.md'), 'fix-login');
  t.equal(safeStem('.hidden.running.md'), 'hidden');
  t.equal(safeStem(''), 'prompt');
  t.equal(safeStem('\u0000\u202e.md'), 'prompt');
  for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]']) t.ok(isLoopbackHost(h), `${h} is loopback`);
  for (const h of ['0.0.0.0', '192.168.1.5', '::', 'example.com', '127.0.0.1.evil.com']) t.notOk(isLoopbackHost(h), `${h} is not loopback`);
  t.ok(tokenMatches(TOKEN, TOKEN));
  t.notOk(tokenMatches(TOKEN, `${TOKEN}x`), 'a longer token does not match');
  t.notOk(tokenMatches(TOKEN, TOKEN.slice(0, 5)), 'a prefix does not match');
  t.notOk(tokenMatches(TOKEN, undefined));
  t.equal(bearerToken(`Bearer ${TOKEN}`), TOKEN);
  t.equal(bearerToken(`Basic ${TOKEN}`), undefined);
});

t.test('submit: written atomically into the target, front matter kept byte for byte, names unique', async (t) => {
  const { root, web } = await setup(t);
  const text = '---\ntitle: "Fix: the login"\nlabels: [a, b]\n---\n# Fix the login\n\nÄnderung ✓\n';
  const a = await postJson(web, { target: 'widget/feature~x', name: 'Fix Login', text });
  t.equal(a.status, 201, a.text);
  const job = a.json<{ jobs: Array<{ job_id: string; prompt_rel: string; name: string }> }>().jobs[0]!;
  t.equal(job.prompt_rel, 'widget/feature~x/fix-login.prompt.md');
  t.equal(await fsp.readFile(path.join(root.inbox, job.prompt_rel), 'utf8'), text, 'the file holds exactly what was sent');
  const b = await postJson(web, { target: 'widget/feature~x', name: 'fix-login.prompt.md', text });
  t.equal(b.json<{ jobs: Array<{ name: string }> }>().jobs[0]!.name, 'fix-login.2.prompt.md', 'a taken name gets a new one, never overwritten');
  // A name settled in finished/ is not reused either: a job's runs stay its own.
  await fsp.mkdir(path.join(root.finished, 'gadget', 'dev'), { recursive: true });
  await fsp.writeFile(path.join(root.finished, 'gadget', 'dev', 'old.done.md'), 'x');
  const c = await postJson(web, { target: 'gadget/dev', name: 'old', text: '# Old\n' });
  t.equal(c.json<{ jobs: Array<{ name: string }> }>().jobs[0]!.name, 'old.2.prompt.md');
  const d = await postJson(web, { target: 'gadget/dev', text: '---\ntitle: From the Title\n---\nbody\n' });
  t.equal(d.json<{ jobs: Array<{ name: string }> }>().jobs[0]!.name, 'from-the-title.prompt.md', 'no name: the title names it');
  t.same(await tree(root.inbox), [
    'gadget/dev/from-the-title.prompt.md', 'gadget/dev/old.2.prompt.md',
    'widget/feature~x/fix-login.2.prompt.md', 'widget/feature~x/fix-login.prompt.md',
  ], 'no temporary file is left behind');
  const job2 = await request(`${web.url}/api/jobs/${job.job_id}`);
  t.match(job2.json(), { state: 'pending', prompt_rel: job.prompt_rel, run_ids: [] });
});

t.test('path traversal in targets and names never leaves the inbox; unknown targets are 404', async (t) => {
  const { root, web } = await setup(t);
  await fsp.mkdir(path.join(root.root, 'outside', 'main'), { recursive: true });
  await fsp.symlink(path.join(root.root, 'outside'), path.join(root.inbox, 'linked'));
  for (const target of ['../outside/main', 'widget/../../outside/main', 'widget/main/..', '/etc', 'widget/main/', 'widget', 'linked/main',
    'widget/main/../dev', 'widget%2fmain', '', 42, null]) {
    const r = await postJson(web, { target, text: '# x\n' });
    t.equal(r.status, 404, `target ${JSON.stringify(target)}: 404`);
    t.equal(r.json<{ error: { code: string } }>().error.code, 'no_such_target');
  }
  for (const name of ['../../../outside/main/evil', '/etc/cron.d/evil', '..', '.hidden', 'a/../../b', '-rf', 'x.running.md']) {
    const r = await postJson(web, { target: 'widget/main', name, text: '# x\n' });
    t.equal(r.status, 201, `name ${name}: accepted under a safe name`);
  }
  const up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: '../../../outside/main/up.md', data: '# up\n' }]);
  t.equal((await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body })).status, 201);
  t.same(await tree(path.join(root.root, 'outside')), [], 'nothing was written outside the inbox');
  const names = await tree(path.join(root.inbox, 'widget', 'main'));
  t.ok(names.every((n) => /^[a-z0-9-]+(\.\d+)?\.prompt\.md$/.test(n)), `only safe names in the target: ${names.join(' ')}`);
  t.ok(names.includes('up.prompt.md') && names.includes('evil.prompt.md') && names.includes('rf.prompt.md'));
  for (const p of ['/api/runs/..%2F..%2Fetc', '/api/runs/.ledger', '/api/runs/%2e%2e/log', '/api/runs/..']) {
    const r = await request(`${web.url}${p}`);
    t.ok(r.status === 400 || r.status === 404, `${p}: ${r.status}`);
    t.notMatch(r.text, /root:|ledger/, `${p} shows nothing of the filesystem`);
  }
  t.equal((await request(`${web.url}/api/jobs/not-a-job`)).status, 400);
  t.equal((await request(`${web.url}/../../etc/passwd`)).status, 404);
});

t.test('sizes, content types, file types and encodings are checked before anything is written', async (t) => {
  // An operator who narrowed codex's sandbox: a prompt may not widen it again.
  const { root, web } = await setup(t, { watcher: { runner_sandbox: 'workspace-write' } });
  const big = `# big\n${'x'.repeat(5000)}\n`;
  let r = await postJson(web, { target: 'widget/main', text: big });
  t.equal(r.status, 413, 'a JSON prompt over web.max_upload_bytes');
  r = await postJson(web, { target: 'widget/main', text: 'y'.repeat(100_000) });
  t.equal(r.status, 413, 'a JSON body over the body limit (2 × max_upload_bytes + 64 KiB)');
  t.match(r.json(), { error: { code: 'too_large' } });
  let up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: 'big.md', data: big }]);
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body });
  t.equal(r.status, 413, 'an uploaded file over web.max_upload_bytes');
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'text/markdown']) {
    r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': type }, body: 'target=widget/main&text=x' });
    t.equal(r.status, 415, `${type}: 415`);
  }
  up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: 'ok.md', data: '# ok\n' }, { name: 'file', filename: 'run.sh', data: 'echo\n' }]);
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body });
  t.equal(r.status, 415, 'a file that is not .md');
  up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: 'ok.md', data: '# ok\n' }, { name: 'file', filename: 'latin1.md', data: Buffer.from([0x23, 0x20, 0xe9, 0x74, 0xe9, 0x0a]) }]);
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body });
  t.equal(r.status, 400);
  t.match(r.json(), { error: { code: 'not_utf8', message: /latin1\.md/ } });
  up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: 'nul.md', data: Buffer.from('# a\0b\n') }]);
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body });
  t.equal(r.status, 400, 'a NUL byte');
  r = await postJson(web, { target: 'widget/main', text: '---\ntitle: [unclosed\n---\n# x\n' });
  t.match(r.json(), { error: { code: 'bad_front_matter' } });
  r = await postJson(web, { target: 'widget/main', text: '' });
  t.equal(r.status, 400, 'an empty prompt');
  for (const type of ['multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; charset=utf-8']) {
    r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': type }, body: '--x\r\nContent-Disposition: form-data; name="target"\r\n\r\nwidget/main\r\n--x--\r\n' });
    t.equal(r.status, 400, `${type}: 400, not 500`);
    // An empty boundary parses as a body without parts.
    t.match(r.json(), { error: type.endsWith('=') ? { code: 'no_files' } : { code: 'bad_multipart', message: /boundary/i } }, `${type}: says why`);
  }
  up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: 'wide.md', data: '---\nsandbox: danger-full-access\n---\n# x\n' }]);
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body });
  t.equal(r.status, 400, 'front matter that widens the operator\'s sandbox');
  t.match(r.json(), { error: { code: 'bad_front_matter', message: /wide\.md: front matter sandbox/ } });
  r = await postJson(web, { target: 'widget/main', text: '---\ntimeout: 999999999\n---\n# x\n' });
  t.match(r.json(), { error: { code: 'bad_front_matter', message: /at most/ } });
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"target": "widget/main", "text": ' });
  t.equal(r.status, 400, 'broken JSON');
  t.same(await tree(root.inbox), [], 'nothing was written, not even a temporary file');
  up = multipart([{ name: 'target', data: 'widget/main' }, { name: 'file', filename: 'One.md', data: '# one\n' }, { name: 'file', filename: 'two.markdown', data: '# two\n' }]);
  r = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': up.type }, body: up.body });
  t.equal(r.status, 201, 'two .md files in one upload');
  t.same(await tree(root.inbox), ['widget/main/one.prompt.md', 'widget/main/two.prompt.md']);
});

t.test('cross-site requests and DNS rebinding are refused', async (t) => {
  const { root, web } = await setup(t);
  let r = await postJson(web, { target: 'widget/main', text: '# x\n' }, { origin: 'http://evil.example' });
  t.equal(r.status, 403, 'another Origin');
  r = await postJson(web, { target: 'widget/main', text: '# x\n' }, { origin: 'null' });
  t.equal(r.status, 403, 'Origin null');
  r = await postJson(web, { target: 'widget/main', text: '# x\n' }, { 'sec-fetch-site': 'cross-site' });
  t.equal(r.status, 403, 'Sec-Fetch-Site cross-site');
  r = await request(`${web.url}/api/queue`, { headers: { host: 'rebound.evil.example:8088' } });
  t.equal(r.status, 421, 'a non-loopback Host on a loopback bind');
  t.same(await tree(root.inbox), []);
  r = await postJson(web, { target: 'widget/main', text: '# x\n' }, { origin: web.url });
  t.equal(r.status, 201, 'the page itself may post');
  r = await request(`${web.url}/`);
  t.match(r.headers['content-security-policy'], "default-src 'none'");
  t.equal(r.headers['x-frame-options'], 'DENY');
});

t.test('a token: required for every API request but health, compared whole, never logged', async (t) => {
  const { root, web } = await setup(t, { web: { token: TOKEN, max_upload_bytes: 4096 } });
  t.equal((await request(`${web.url}/api/health`)).status, 200, 'health needs no token');
  for (const [what, headers] of [
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer web-token-0123456789abcdeX' }],
    ['a prefix', { authorization: 'Bearer web-token' }],
    ['the token as Basic', { authorization: `Basic ${TOKEN}` }],
  ] as const) {
    for (const [method, p] of [['GET', '/api/queue'], ['GET', '/api/targets'], ['POST', '/api/prompts'], ['POST', '/api/runs/x/abort']] as const) {
      const r = await request(`${web.url}${p}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'POST' ? '{"target":"widget/main","text":"# x"}' : undefined });
      t.equal(r.status, 401, `${what}: ${method} ${p} is 401`);
    }
  }
  t.same(await tree(root.inbox), []);
  const ok = await postJson(web, { target: 'widget/main', text: '# x\n' }, { authorization: `Bearer ${TOKEN}` });
  t.equal(ok.status, 201);
  t.equal((await request(`${web.url}/`)).status, 200, 'the page itself is public: it holds no data');
  t.equal((await request(`${web.url}/api/queue?token=${TOKEN}`)).status, 401, 'a token in the URL is not accepted');
  t.equal(await web.stop(), 0, 'SIGTERM stops it with 0');
  t.notMatch(web.stderr(), TOKEN, 'the token is not in the log');
  t.match(web.stderr(), 'POST /api/prompts 201');
});

t.test('configuration: a public address needs a token of some length; a bad port or config exits clearly', async (t) => {
  const root = await makeValetRoot({}, 'pv-web-config-');
  t.teardown(() => root.cleanup());
  let r = await runBin('pv-web', ['--config', root.configPath, '--host', '0.0.0.0', '--port', '0'], { timeout: 30_000 });
  t.equal(r.code, 78, 'no token on 0.0.0.0');
  t.match(r.stderr, /web\.host is 0\.0\.0\.0, not a loopback address, but neither web\.token nor web\.token_file is set/);
  await root.configure({ web: { token: 'short' } });
  r = await runBin('pv-web', ['--config', root.configPath, '--port', '0'], { timeout: 30_000 });
  t.equal(r.code, 78);
  t.match(r.stderr, /shorter than 16/);
  t.notMatch(r.stderr, 'short\n', 'the token itself is not shown');
  const tokenFile = path.join(root.root, 'config', 'web-token');
  await root.configure({ web: { token: '', token_file: tokenFile } });
  r = await runBin('pv-web', ['--config', root.configPath, '--port', '0'], { timeout: 30_000 });
  t.equal(r.code, 78);
  t.match(r.stderr, /web\.token_file: cannot read .*web-token: ENOENT/);
  await fsp.writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const web = await startWeb(root.configPath, { args: ['--host', '0.0.0.0'] });
  t.teardown(() => web.stop());
  const url = web.url.replace('0.0.0.0', '127.0.0.1');
  t.equal((await request(`${url}/api/queue`)).status, 401);
  t.equal((await request(`${url}/api/queue`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200, 'the token from the file');
  r = await runBin('pv-web', ['--config', root.configPath, '--port', '99999'], { timeout: 30_000 });
  t.equal(r.code, 64);
  r = await runBin('pv-web', ['--help'], { timeout: 30_000 });
  t.equal(r.code, 0);
  t.match(r.stdout, /POST \/api\/prompts/);
  t.match(r.stdout, /Exit status/);
});
