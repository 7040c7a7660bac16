import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, RUN_FILES, type PvRecord } from '@prompt-valet/core';
import { originBranches } from '@prompt-valet/testkit';
import { setup, TOKEN } from './fixtures/setup.js';

const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);
const shellTouch = (marker: string) => `#!/bin/sh\ntouch '${marker}'\n`;

t.test('hooks in the shared clone never run', async (t) => {
  const { root, bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'hooked.txt': 'x\n' });
  const hooks = path.join(rec.target!.repo_dir, '.git', 'hooks');
  const markers: string[] = [];
  for (const hook of ['pre-commit', 'prepare-commit-msg', 'commit-msg', 'post-commit', 'pre-push', 'reference-transaction', 'post-index-change']) {
    const marker = path.join(root.root, `ran-${hook}`);
    markers.push(marker);
    await fsp.writeFile(path.join(hooks, hook), shellTouch(marker), { mode: 0o755 });
  }
  const r = await publish([rec]);
  t.match(r.records[0]!.publish, { outcome: 'pr_opened' }, r.stderr);
  for (const m of markers) t.notOk(await exists(m), `${path.basename(m)}: not run`);
  t.equal(gh.pullRequests.length, 1);
});

t.test('a rewritten .git pointer, planted config (fsmonitor, include.path, filters, hooks) and .gitattributes do nothing', async (t) => {
  const { root, bare, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'data.txt': 'the real content\n', '.gitattributes': '* filter=evil diff=evil\n' });
  const dir = rec.checkout!.dir;
  const marker = path.join(root.root, 'pwned');
  const script = path.join(root.root, 'evil.sh');
  await fsp.writeFile(script, `#!/bin/sh\ntouch '${marker}'\necho filtered\n`, { mode: 0o755 });
  // what an agent can write: the checkout, including its .git entry (here a whole fake git dir)
  const planted = path.join(dir, '.git');
  await fsp.rm(planted);
  const decoy = path.join(dir, 'decoy');
  await git(['init', '-q', decoy]);
  await git(['-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-q', '--allow-empty', '-m', 'decoy'], { cwd: decoy });
  await fsp.rename(path.join(dir, 'decoy', '.git'), planted);
  await fsp.rm(path.join(dir, 'decoy'), { recursive: true });
  const included = path.join(root.root, 'included.cfg');
  await fsp.writeFile(included, `[core]\n\tfsmonitor = ${script}\n[filter "evil"]\n\tclean = ${script}\n\tsmudge = ${script}\n`);
  await fsp.appendFile(path.join(planted, 'config'),
    `[core]\n\tfsmonitor = ${script}\n\thooksPath = ${path.join(planted, 'hooks')}\n[include]\n\tpath = ${included}\n[filter "evil"]\n\tclean = ${script}\n[diff "evil"]\n\ttextconv = ${script}\n`);
  await fsp.writeFile(path.join(planted, 'hooks', 'pre-commit'), shellTouch(marker), { mode: 0o755 });
  // the user's global config is not read for the work tree either: a filter there is not reached
  const home = path.join(root.root, 'home');
  await fsp.mkdir(home);
  await fsp.writeFile(path.join(home, '.gitconfig'), `[filter "evil"]\n\tclean = ${script}\n[core]\n\tfsmonitor = ${script}\n`);

  const r = await publish([rec], { HOME: home });
  const out = r.records[0]!;
  t.notOk(out.error, JSON.stringify(out.error) + r.stderr);
  t.notOk(await exists(marker), 'no planted program ran');
  const commit = out.publish!.commit!;
  t.equal((await originBranches(bare)).get(rec.target!.agent_branch), commit, 'the work went to the run\'s agent branch');
  t.equal((await git(['show', `${commit}:data.txt`], { cwd: bare })).stdout, 'the real content', 'committed unfiltered');
  const files = (await git(['show', '--name-only', '--format=', commit], { cwd: bare })).stdout.split('\n');
  t.notOk(files.some((f) => f.startsWith('.git/') || f === '.git'), 'nothing of the planted .git is committed');
});

t.test('symlinks planted for the last message and the agent-runs file are not followed', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'work.txt': 'x\n' });
  const last = path.join(rec.claim!.run_root, RUN_FILES.lastMessage);
  await fsp.rm(last);
  await fsp.symlink('/etc/passwd', last);
  const own = path.join(rec.checkout!.dir, 'docs', 'AGENT_RUNS', `codex-run-${rec.run_id}.md`);
  await fsp.rm(own);
  await fsp.symlink('/etc/passwd', own);
  const r = await publish([rec]);
  const out = r.records[0]!;
  t.notOk(out.error, JSON.stringify(out.error));
  const body = gh.pullRequests[0]!.body;
  t.notMatch(body, 'root:', 'the PR body holds nothing of /etc/passwd');
  t.match(body, 'The agent left no final message');
  t.match(r.stderr, 'symbolic link', 'the refusal is logged');
  const blob = (await git(['cat-file', '-p', `${out.publish!.commit}:docs/AGENT_RUNS/codex-run-${rec.run_id}.md`], { cwd: bare })).stdout;
  t.equal(blob, '/etc/passwd', 'the agent-runs file is committed as the link it is, not as the file it points at');
});

t.test('a repository the agent made inside the checkout is refused, nothing pushed', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'vendor/lib/a.txt': 'a\n' });
  const nested = path.join(rec.checkout!.dir, 'vendor', 'lib');
  await git(['init', '-q'], { cwd: nested });
  await git(['add', '.'], { cwd: nested });
  await git(['-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-qm', 'inner'], { cwd: nested });
  const r = await publish([rec]);
  t.match(r.records[0]!.error, { step: 'publish', code: 'nested_repo', retryable: false, message: /vendor\/lib/ });
  t.notOk((await originBranches(bare)).has(rec.target!.agent_branch));
  t.equal(gh.requests.length, 0);
  t.ok(await exists(path.join(nested, 'a.txt')), 'the agent\'s files stay where they were');
  const repoDir = rec.target!.repo_dir;
  const agentRef = `refs/heads/${rec.target!.agent_branch}`;
  t.equal((await git(['rev-parse', agentRef], { cwd: repoDir })).stdout, rec.checkout!.base_sha, 'the refused commit is undone: the branch is back at its base');
  t.equal((await git(['diff', '--cached', '--name-only'], { cwd: rec.checkout!.dir })).stdout, '', 'and nothing is left staged');

  // The operator removes the inner .git: the retry commits the files themselves.
  await fsp.rm(path.join(nested, '.git'), { recursive: true });
  const again = await publish([rec]);
  t.notOk(again.records[0]!.error, JSON.stringify(again.records[0]!.error));
  const files = (await git(['show', '--name-only', '--format=', again.records[0]!.publish!.commit!], { cwd: bare })).stdout;
  t.match(files, 'vendor/lib/a.txt', 'pushed as files, not as a submodule');
});

const SECRETS: [string, string, RegExp][] = [
  ['a GitHub token in the diff', 'config.js', /GitHub token/],
  ['a private key in the diff', 'id_rsa', /private key/],
  ['the token pv-publish holds in the diff', 'notes.txt', /forge token/],
  ['an AWS key in the last message', 'LAST', /AWS access key/],
];
const SECRET_TEXT: Record<string, string> = {
  'config.js': `export const token = "ghp_${'A1b2C3d4'.repeat(5)}";\n`,
  id_rsa: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
  'notes.txt': `the token is ${TOKEN}\n`,
  LAST: 'I used AKIAIOSFODNN7EXAMPLE to deploy.\n',
};

for (const [what, file, kind] of SECRETS) {
  t.test(`${what} blocks the push with secret_detected, the secret never printed`, async (t) => {
    const { bare, gh, cloned, publish } = await setup(t);
    const rec = await cloned(bare, file === 'LAST' ? { 'ok.txt': 'fine\n' } : { [file]: SECRET_TEXT[file]! });
    if (file === 'LAST') await fsp.writeFile(path.join(rec.claim!.run_root, RUN_FILES.lastMessage), SECRET_TEXT.LAST!);
    const r = await publish([rec]);
    const err = r.records[0]!.error;
    t.match(err, { step: 'publish', code: 'secret_detected', retryable: false, message: kind });
    if (file !== 'LAST') t.match(err?.message, `${file} line 1`, 'the file and line are named');
    t.notOk((await originBranches(bare)).has(rec.target!.agent_branch), 'nothing pushed');
    t.equal(gh.requests.length, 0, 'no PR');
    const secret = /ghp_\w+|b3BlbnNzaC1rZXktdjEAAAAA|AKIA\w+/.exec(SECRET_TEXT[file]!)?.[0] ?? TOKEN;
    t.notMatch(r.stdout + r.stderr, secret, 'the secret itself is not printed');
  });
}

t.test('forged records naming places outside the valet fail with foreign_path; nothing pushed', async (t) => {
  const { root, bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'fine.txt': 'x\n' });
  // a worktree outside the valet root with uncommitted files someone would like pushed
  const outside = path.join(root.root, 'outside');
  await git(['worktree', 'add', '-q', '--detach', outside], { cwd: rec.target!.repo_dir });
  await fsp.writeFile(path.join(outside, 'stolen.txt'), 'not the agent\'s\n');
  const forged: PvRecord[] = [
    { ...rec, checkout: { ...rec.checkout!, dir: outside } },
    { ...rec, claim: { ...rec.claim!, run_root: path.join(root.root, 'elsewhere') } },
    { ...rec, agent: { ...rec.agent!, last_message: '/etc/passwd' } },
    { ...rec, claim: { ...rec.claim!, path: '/etc/passwd' } },
  ];
  const r = await publish(forged);
  t.equal(r.records.length, 4);
  for (const out of r.records) t.match(out.error, { step: 'publish', code: 'foreign_path', retryable: false });
  t.notOk((await originBranches(bare)).has(rec.target!.agent_branch), 'nothing pushed');
  t.equal(gh.requests.length, 0);
  t.ok(await exists(path.join(outside, 'stolen.txt')));
});
