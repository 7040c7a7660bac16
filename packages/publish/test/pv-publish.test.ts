import t from 'tap';
import { execa } from 'execa';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, readRunStatus, RUN_FILES } from '@prompt-valet/core';
import { binPath, originBranches, startGitServers } from '@prompt-valet/testkit';
import { setup, TOKEN } from './fixtures/setup.js';

const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);

async function allText(dir: string): Promise<string> {
  let out = '';
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await fsp.readFile(path.join(e.parentPath ?? e.path, e.name), 'utf8');
  }
  return out;
}

t.test('changes over http:// are committed, pushed and opened as a PR through the real gh', async (t) => {
  const { root, bare, gh, cloned, publish, origins } = await setup(t);
  const servers = await startGitServers(origins);
  t.teardown(() => servers.close());
  const rec = await cloned(servers.http.url('acme/widget.git'), { 'src/login.js': 'export const ok = true;\n' },
    { front_matter: { title: 'Make login work', draft: true } });
  const r = await publish([rec]);
  t.equal(r.code, 0, r.stderr);
  const out = r.records[0]!;
  t.notOk(out.error, JSON.stringify(out.error));
  t.match(out.publish, { outcome: 'pr_opened', pr_url: `https://${gh.host}/acme/widget/pull/1`, branch: rec.target!.agent_branch });

  const tip = (await originBranches(bare)).get(rec.target!.agent_branch);
  t.equal(tip, out.publish!.commit, 'the agent branch is on origin at the commit');
  const show = (await git(['show', '--name-only', '--format=%an <%ae>%n%s', tip!], { cwd: bare })).stdout;
  t.match(show, 'Valet Bot <valet@example.test>');
  t.match(show, `Codex: fix-login.prompt.md (run ${rec.run_id})`);
  t.match(show, 'src/login.js');
  t.match(show, `docs/AGENT_RUNS/codex-run-${rec.run_id}.md`);

  t.equal(gh.pullRequests.length, 1);
  const pr = gh.pullRequests[0]!;
  t.match(pr, { owner: 'acme', repo: 'widget', base: 'main', head: rec.target!.agent_branch, title: 'Make login work', draft: true, labels: ['codex'] });
  t.match(pr.body, 'Changed the login button.');
  t.match(pr.body, `Prompt: \`${rec.claim!.prompt_rel}\``, 'names the prompt as the operator dropped it');
  t.match(pr.body, `<!-- prompt-valet run_id=${rec.run_id} -->`);
  t.ok(gh.requests.length > 0 && gh.requests.every((q) => q.token === TOKEN), 'gh used the token from its environment');

  t.notOk(await exists(rec.checkout!.dir), 'the worktree is removed once pushed');
  const status = await readRunStatus(rec.claim!.run_root);
  t.match(status, { state: 'published', outcome: 'pr_opened', pr_url: pr.url });
  t.equal(await fsp.readFile(path.join(rec.claim!.run_root, RUN_FILES.prBody), 'utf8'), pr.body, 'pr-body.md is what GitHub got');
  for (const [what, text] of [['stdout', r.stdout], ['stderr', r.stderr], ['run folder', await allText(rec.claim!.run_root)]]) {
    t.notMatch(text, TOKEN, `the token is not in ${what}`);
  }
  t.ok(root);
});

t.test('no changes but the agent\'s own run file: no_changes, no branch, no PR', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, {});
  const r = await publish([rec]);
  t.match(r.records[0]!.publish, { outcome: 'no_changes' });
  t.notOk((await originBranches(bare)).has(rec.target!.agent_branch), 'nothing pushed');
  t.equal(gh.pullRequests.length, 0);
  t.notOk(await exists(rec.checkout!.dir), 'the worktree is removed');
  t.match(await readRunStatus(rec.claim!.run_root), { state: 'published', outcome: 'no_changes' });
});

t.test('two runs on one repository at once over git:// are both committed, pushed and opened', async (t) => {
  const { bare, gh, cloned, publish, origins } = await setup(t);
  const servers = await startGitServers(origins);
  t.teardown(() => servers.close());
  const url = servers.daemon.url('acme/widget.git');
  const [a, b] = await Promise.all([
    cloned(url, { 'a.txt': 'from run a\n' }, { promptName: 'task-a.prompt.md', prompt: '# Task A\n' }),
    cloned(url, { 'b.txt': 'from run b\n' }, { promptName: 'task-b.prompt.md', prompt: '# Task B\n' }),
  ]);
  const results = await Promise.all([publish([a!]), publish([b!])]);
  const branches = await originBranches(bare);
  for (const [rec, r, file] of [[a!, results[0], 'a.txt'], [b!, results[1], 'b.txt']] as const) {
    const out = r.records[0]!;
    t.notOk(out.error, JSON.stringify(out.error));
    t.equal(branches.get(rec.target!.agent_branch), out.publish!.commit);
    const files = (await git(['show', '--name-only', '--format=', out.publish!.commit!], { cwd: bare })).stdout.split('\n');
    t.ok(files.includes(file) && !files.includes(file === 'a.txt' ? 'b.txt' : 'a.txt'), `${file}: each commit holds only its own run's work`);
  }
  t.same(gh.pullRequests.map((p) => p.title).sort(), ['Task A', 'Task B']);
});

t.test('a rerun after a crash between push and PR opens exactly one PR', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'x.txt': 'x\n' });
  gh.failNext('PullRequestCreate', 502);
  let r = await publish([rec]);
  const failed = r.records[0]!;
  t.match(failed.error, { step: 'publish', code: 'gh_failed', retryable: true });
  const pushed = (await originBranches(bare)).get(rec.target!.agent_branch);
  t.ok(pushed, 'the branch was pushed before gh failed');
  t.ok(await exists(rec.checkout!.dir), 'the failed run keeps its worktree');
  t.equal(gh.pullRequests.length, 0);

  r = await publish([rec]);
  t.match(r.records[0]!.publish, { outcome: 'pr_opened', commit: pushed });
  const opened = r.records[0]!.publish!.pr_url;
  r = await publish([rec]);
  t.match(r.records[0]!.publish, { outcome: 'pr_opened', commit: pushed, pr_url: opened }, 'a third run re-emits what publish.json recorded, worktree already gone');
  t.equal(gh.pullRequests.length, 1, 'exactly one PR');
  t.equal((await originBranches(bare)).get(rec.target!.agent_branch), pushed, 'no new commit');
});

t.test('a PR opened before a crash is found, not duplicated', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'y.txt': 'y\n' });
  const seeded = gh.seedPullRequest({ owner: 'acme', repo: 'widget', head: rec.target!.agent_branch });
  const r = await publish([rec]);
  t.match(r.records[0]!.publish, { outcome: 'pr_exists', pr_url: seeded.url });
  t.equal(gh.pullRequests.length, 0);
});

t.test('push rejected: retryable, gh not called, the commit kept on the local branch', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = await cloned(bare, { 'z.txt': 'z\n' });
  await fsp.writeFile(path.join(bare, 'hooks', 'pre-receive'), '#!/bin/sh\necho "branch protection says no" >&2\nexit 1\n', { mode: 0o755 });
  const r = await publish([rec]);
  const out = r.records[0]!;
  t.match(out.error, { step: 'publish', code: 'push_rejected', retryable: true, detail: /branch protection says no/ });
  t.notOk((await originBranches(bare)).has(rec.target!.agent_branch));
  t.equal(gh.requests.length, 0);
  const local = (await git(['log', '-1', '--format=%s', `refs/heads/${rec.target!.agent_branch}`], { cwd: rec.target!.repo_dir })).stdout;
  t.match(local, `run ${rec.run_id}`, 'the commit is on the local agent branch');
  t.ok(await exists(path.join(rec.checkout!.dir, 'z.txt')), 'the worktree is kept');

  await fsp.rm(path.join(bare, 'hooks', 'pre-receive'));
  const again = await publish([rec]);
  t.match(again.records[0]!.publish, { outcome: 'pr_opened' }, 'a retry publishes the kept commit');
  t.equal((await originBranches(bare)).get(rec.target!.agent_branch)?.length, 40);
});

t.test('publisher none pushes and writes the PR text without gh', async (t) => {
  const { bare, cloned, publish } = await setup(t, { publisher: 'none', gh_cmd: '/nonexistent/gh' });
  const rec = await cloned(bare, { 'n.txt': 'n\n' });
  const r = await publish([rec]);
  t.match(r.records[0]!.publish, { outcome: 'pushed', title: 'Fix the login page' });
  t.ok((await originBranches(bare)).has(rec.target!.agent_branch));
  t.match(await fsp.readFile(path.join(rec.claim!.run_root, RUN_FILES.prBody), 'utf8'), `prompt-valet run_id=${rec.run_id}`);
  t.match(JSON.parse(await fsp.readFile(path.join(rec.claim!.run_root, RUN_FILES.publish), 'utf8')), { outcome: 'pushed', title: 'Fix the login page' });
});

t.test('gh missing: gh_missing; a hostile agent branch: bad_target', async (t) => {
  const { bare, cloned, publish } = await setup(t, { gh_cmd: '/nonexistent/gh' });
  const rec = await cloned(bare, { 'm.txt': 'm\n' });
  const hostile = { ...rec, target: { ...rec.target!, agent_branch: '--delete' } };
  const r = await publish([rec, hostile]);
  t.match(r.records[0]!.error, { code: 'gh_missing', retryable: false });
  t.match(r.records[1]!.error, { code: 'bad_target', retryable: false });
});

t.test('--help', async (t) => {
  const r = await execa(process.execPath, [binPath('pv-publish'), '--help'], { reject: false, timeout: 60_000 });
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /push_rejected/);
  t.match(r.stdout, /Exit status/);
});

t.test('an agent that left HEAD detached, with files whose names have spaces: committed on the agent branch', async (t) => {
  const { bare, cloned, publish } = await setup(t, { publisher: 'none' });
  const rec = await cloned(bare, { 'docs/a file with spaces.md': 'x\n' });
  const dir = rec.checkout!.dir;
  await git(['checkout', '-q', '--detach'], { cwd: dir });
  await git(['mv', 'README.md', 'READ ME.md'], { cwd: dir });
  const r = await publish([rec]);
  const out = r.records[0]!;
  t.notOk(out.error, JSON.stringify(out.error) + r.stderr);
  t.match(out.publish, { outcome: 'pushed' });
  const files = (await git(['show', '--name-status', '--format=', `refs/heads/${rec.target!.agent_branch}`], { cwd: bare })).stdout;
  t.match(files, 'docs/a file with spaces.md');
  t.match(files, 'READ ME.md');
  t.equal((await git(['rev-parse', `refs/heads/${rec.target!.agent_branch}`], { cwd: bare })).stdout, out.publish!.commit, 'the commit recorded is the one pushed');
});
