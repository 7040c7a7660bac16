import t, { type Test } from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, readRunStatus, type PvRecord } from '@prompt-valet/core';
import { execa } from 'execa';
import { binPath, commitToOrigin, makeOrigin, makeRunRecord, makeValetRoot, originBranches, runBin, startGitServers, type ValetRoot } from '@prompt-valet/testkit';

async function setup(t: Test, overrides: Record<string, unknown> = {}) {
  const root: ValetRoot = await makeValetRoot(overrides, 'pv-clone-');
  t.teardown(() => root.cleanup());
  const origins = path.join(root.root, 'origins');
  const bare = await makeOrigin(path.join(origins, 'acme', 'widget.git'), { branches: ['main', 'dev'] });
  const record = (cloneUrl = bare, more: Partial<Parameters<typeof makeRunRecord>[0]> = {}) =>
    makeRunRecord({ processed: root.processed, reposRoot: root.repos, cloneUrl, ...more });
  const clone = (input: PvRecord[], env: NodeJS.ProcessEnv = {}) =>
    runBin('pv-clone', ['--config', root.configPath], { input, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
  return { root, origins, bare, record, clone };
}

const head = async (dir: string) => (await git(['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim();
const branchOf = async (dir: string) => (await git(['symbolic-ref', '--short', 'HEAD'], { cwd: dir })).stdout.trim();
const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);


t.test('clones a missing repository over file, git:// and http://, each run on its own worktree', async (t) => {
  const { root, origins, bare, record, clone } = await setup(t);
  const servers = await startGitServers(origins);
  t.teardown(() => servers.close());
  const upstream = (await originBranches(bare)).get('main')!;
  for (const [kind, url, owner] of [
    ['file', bare, 'acme'],
    ['git', servers.daemon.url('acme/widget.git'), 'viagit'],
    ['http', servers.http.url('acme/widget.git'), 'viahttp'],
  ] as const) {
    const rec = await record(url, { owner });
    const r = await clone([rec]);
    t.equal(r.code, 0, `${kind}: exit 0 (${r.stderr})`);
    const out = r.records[0]!;
    t.notOk(out.error, `${kind}: no error ${JSON.stringify(out.error)}`);
    const dir = out.checkout!.dir;
    t.equal(dir, path.join(root.repos, '.worktrees', owner, 'widget', rec.run_id!), `${kind}: worktree under .worktrees`);
    t.equal(await branchOf(dir), rec.target!.agent_branch, `${kind}: on the agent branch`);
    t.equal(await head(dir), upstream, `${kind}: at origin/main`);
    t.equal(out.checkout!.base_sha, upstream);
    t.same(out.target, rec.target, `${kind}: target untouched`);
    t.ok(await exists(path.join(root.repos, owner, 'widget', 'README.md')), `${kind}: the shared clone is checked out`);
    t.equal((await readRunStatus(rec.claim!.run_root))?.state, 'cloned');
  }
  t.ok(servers.http.requests > 0, 'git went through the http server');
});

t.test('auto-clone off: an error record, nothing cloned', async (t) => {
  const { root, record, clone } = await setup(t, { watcher: { auto_clone_missing_repos: false } });
  const r = await clone([await record()]);
  t.equal(r.code, 0);
  t.match(r.records[0]!.error, { step: 'clone', code: 'repo_missing_auto_clone_off', retryable: false });
  t.notOk(await exists(path.join(root.repos, 'acme', 'widget')));
});

t.test('a non-git folder is moved to the trash and cloned afresh; left alone when cleanup is off', async (t) => {
  const { root, record, clone } = await setup(t, { watcher: { cleanup_non_git_dirs: false } });
  const dir = path.join(root.repos, 'acme', 'widget');
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'notes.txt'), 'operator notes');
  let r = await clone([await record()]);
  t.match(r.records[0]!.error, { code: 'not_a_git_repo', retryable: false });
  t.equal(await fsp.readFile(path.join(dir, 'notes.txt'), 'utf8'), 'operator notes', 'untouched with cleanup off');

  await root.configure({ watcher: { cleanup_non_git_dirs: true } });
  r = await clone([await record()]);
  t.notOk(r.records[0]!.error, JSON.stringify(r.records[0]!.error));
  t.ok(await exists(path.join(dir, '.git')), 'now a clone');
  const trash = path.join(root.repos, '.trash', 'repos', 'acme');
  const [moved] = await fsp.readdir(trash);
  t.equal(await fsp.readFile(path.join(trash, moved!, 'notes.txt'), 'utf8'), 'operator notes', 'the folder was moved, not deleted');
  t.match(r.stderr, /moved it to .*\.trash/);
});

t.test('a clone of another origin is an error with cleanup off', async (t) => {
  const { root, record, clone } = await setup(t, { watcher: { cleanup_non_git_dirs: false } });
  const other = await makeOrigin(path.join(root.root, 'origins', 'other', 'thing.git'));
  await git(['clone', '-q', other, path.join(root.repos, 'acme', 'widget')]);
  const r = await clone([await record()]);
  t.match(r.records[0]!.error, { code: 'origin_mismatch', retryable: false, message: /thing\.git/ });
});

t.test('a dirty clone is reset to origin/<base>, its changes stashed, not lost', async (t) => {
  const { root, bare, record, clone } = await setup(t);
  let r = await clone([await record()]);
  t.notOk(r.records[0]!.error);
  const dir = path.join(root.repos, 'acme', 'widget');
  await fsp.writeFile(path.join(dir, 'README.md'), 'local edit\n');
  await fsp.writeFile(path.join(dir, 'stray.txt'), 'stray\n');
  const newer = await commitToOrigin(bare, 'main', { 'CHANGELOG.md': 'v2\n' });

  r = await clone([await record()]);
  const out = r.records[0]!;
  t.notOk(out.error, JSON.stringify(out.error));
  t.equal((await git(['status', '--porcelain'], { cwd: dir })).stdout, '', 'the clone is clean');
  t.equal(await head(dir), newer, 'the clone is at the new origin/main');
  t.equal(await head(out.checkout!.dir), newer, 'the run starts from the new origin/main');
  const stashed = (await git(['stash', 'show', '--include-untracked', '--name-only', 'stash@{0}'], { cwd: dir })).stdout;
  t.match(stashed, /README\.md/);
  t.match(stashed, /stray\.txt/);

  await root.configure({ watcher: { cleanup_non_git_dirs: false } });
  await fsp.writeFile(path.join(dir, 'README.md'), 'another edit\n');
  r = await clone([await record()]);
  t.match(r.records[0]!.error, { code: 'repo_dirty', retryable: false });
  t.equal(await fsp.readFile(path.join(dir, 'README.md'), 'utf8'), 'another edit\n', 'left alone with cleanup off');
});

t.test('a base branch missing upstream: non-retryable, names the branch', async (t) => {
  const { record, clone } = await setup(t);
  const r = await clone([await record(undefined, { branch: 'release/9' })]);
  t.match(r.records[0]!.error, { code: 'base_branch_missing', retryable: false, message: /release\/9/ });
});

t.test('a fresh clone that ends in base_branch_missing is left clean: the next run stashes nothing', async (t) => {
  const { root, record, clone } = await setup(t);
  const first = await clone([await record(undefined, { branch: 'release/9' })]);
  t.match(first.records[0]!.error, { code: 'base_branch_missing' });
  const dir = path.join(root.repos, 'acme', 'widget');
  t.equal((await git(['status', '--porcelain', '--untracked-files=all'], { cwd: dir })).stdout.trim(), '', 'nothing staged or changed in the shared clone');
  const next = await clone([await record()]);
  t.notOk(next.records[0]!.error, JSON.stringify(next.records[0]!.error));
  t.notOk(next.records[0]!.checkout!.stashed, 'no stash recorded');
  t.equal((await git(['stash', 'list'], { cwd: dir })).stdout.trim(), '', 'no spurious stash');
  t.notMatch(next.stderr, /local changes/);
});

t.test('a remote nobody answers: git_failed, retryable, with git\'s stderr', async (t) => {
  const { record, clone } = await setup(t);
  const r = await clone([await record('git://127.0.0.1:1/acme/widget.git')]);
  t.match(r.records[0]!.error, { step: 'clone', code: 'git_failed', retryable: true, detail: /127\.0\.0\.1/ });
});

t.test('two pv-clone processes on one repository at once both succeed, isolated', async (t) => {
  const { bare, record, clone } = await setup(t);
  const recs = await Promise.all([1, 2, 3, 4].map((n) => record(undefined, { promptName: `task-${n}.prompt.md` })));
  const results = await Promise.all(recs.map((rec) => clone([rec])));
  const dirs = new Set<string>();
  for (const [i, r] of results.entries()) {
    const out = r.records[0]!;
    t.notOk(out.error, `run ${i}: ${JSON.stringify(out.error)} ${r.stderr}`);
    dirs.add(out.checkout!.dir);
    t.equal(await branchOf(out.checkout!.dir), recs[i]!.target!.agent_branch);
  }
  t.equal(dirs.size, 4, 'four separate checkouts');
  t.equal((await git(['worktree', 'list', '--porcelain'], { cwd: recs[0]!.target!.repo_dir })).stdout.match(/^worktree /gm)?.length, 5);
  t.ok(bare);
});

t.test('a leftover agent branch and checkout from an earlier attempt are reused and reset, the old checkout kept aside', async (t) => {
  const { root, record, clone } = await setup(t);
  const rec = await record();
  let r = await clone([rec]);
  const dir = r.records[0]!.checkout!.dir;
  await fsp.writeFile(path.join(dir, 'half-done.txt'), 'work from attempt 1\n');
  await git(['add', '-A'], { cwd: dir });
  await git(['-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-qm', 'attempt 1'], { cwd: dir });
  r = await clone([{ ...rec, claim: { ...rec.claim!, attempt: 2 } }]);
  const out = r.records[0]!;
  t.notOk(out.error, JSON.stringify(out.error));
  t.equal(out.checkout!.reused_branch, true);
  t.equal(await head(out.checkout!.dir), out.checkout!.base_sha, 'the branch was reset to origin/main');
  t.notOk(await exists(path.join(out.checkout!.dir, 'half-done.txt')));
  const trash = path.join(root.repos, '.trash', 'worktrees', 'acme', 'widget');
  const [moved] = await fsp.readdir(trash);
  t.equal(await fsp.readFile(path.join(trash, moved!, 'half-done.txt'), 'utf8'), 'work from attempt 1\n', 'earlier checkout kept aside');
});

t.test('hostile owner, repo, branch and URL never reach git as options', async (t) => {
  const { root, record, clone } = await setup(t);
  const bin = path.join(root.root, 'bin');
  const logFile = path.join(root.root, 'git-args.log');
  await fsp.mkdir(bin);
  const realGit = (await import('node:child_process')).execFileSync('sh', ['-c', 'command -v git']).toString().trim();
  await fsp.writeFile(path.join(bin, 'git'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a" >> '${logFile}'; done\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
  const marker = path.join(root.root, 'pwned');
  const hostile = [
    await record(undefined, { owner: '--upload-pack=touch ' + marker }),
    await record(undefined, { repo: '-oProxyCommand=touch ' + marker }),
    await record(undefined, { branch: '--output=' + marker }),
    await record(undefined, { agentBranch: '-f' }),
    await record('--upload-pack=touch ' + marker),
  ];
  // repo_dir follows the hostile names, as a resolver would make it
  const r = await clone(hostile, { PATH: `${bin}:${process.env.PATH}` });
  t.equal(r.records.length, 5);
  for (const out of r.records) t.match(out.error, { step: 'clone', code: 'bad_target', retryable: false });
  const args = await fsp.readFile(logFile, 'utf8').catch(() => '');
  t.notMatch(args, /upload-pack|ProxyCommand|--output|^-f$/m, 'no hostile value was passed to git');
  t.notOk(await exists(marker));
  t.notOk(await exists(path.join(root.repos, '--upload-pack=touch ' + marker)));
});

t.test('--help describes input, output, errors and exit status', async (t) => {
  const r = await execa(process.execPath, [binPath('pv-clone'), '--help'], { reject: false, timeout: 60_000 });
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /Input:/);
  t.match(r.stdout, /base_branch_missing/);
  t.match(r.stdout, /Exit status/);
});

t.test('a dead attempt whose checkout folder was removed: the new checkout takes the same worktree entry', async (t) => {
  const { record, clone } = await setup(t);
  const rec = await record();
  const first = (await clone([rec])).records[0]!;
  const dir = first.checkout!.dir;
  const repoDir = rec.target!.repo_dir;
  const admin = path.join(repoDir, '.git', 'worktrees', path.basename(dir));
  // Gone without git knowing (an operator's rm); with its branch (so git is not asked who holds it), and with it.
  for (const dropBranch of [true, false]) {
    await fsp.rm(dir, { recursive: true, force: true });
    if (dropBranch) await git(['update-ref', '-d', `refs/heads/${rec.target!.agent_branch}`], { cwd: repoDir });
    const out = (await clone([{ ...rec, claim: { ...rec.claim!, attempt: dropBranch ? 2 : 3 } }])).records[0]!;
    t.notOk(out.error, JSON.stringify(out.error));
    t.equal(out.checkout!.dir, dir, 'the same folder');
    t.equal(out.checkout!.reused_branch, !dropBranch, 'the branch reused only when it was there');
    t.equal((await fsp.readFile(path.join(admin, 'gitdir'), 'utf8')).trim(), path.join(dir, '.git'), 'git\'s entry for it is <run id> (where pv-publish looks), not <run id>1');
    t.equal(await branchOf(dir), rec.target!.agent_branch);
    const listed = (await git(['worktree', 'list', '--porcelain'], { cwd: repoDir })).stdout;
    t.notMatch(listed, /^prunable/m, 'no stale entry left');
  }
});

t.test('a .git that is no repository is not taken for the repository around it', async (t) => {
  const { root, record, clone } = await setup(t, { watcher: { cleanup_non_git_dirs: false } });
  const owner = path.join(root.repos, 'acme');
  await fsp.mkdir(path.join(owner, 'widget', '.git'), { recursive: true });
  await git(['init', '-q', owner]);
  const r = await clone([await record()]);
  t.match(r.records[0]!.error, { code: 'not_a_git_repo', retryable: false });
});

t.test('a clone the operator left on another branch is put back on <base> at origin/<base>', async (t) => {
  const { root, bare, record, clone } = await setup(t);
  t.notOk((await clone([await record()])).records[0]!.error);
  const dir = path.join(root.repos, 'acme', 'widget');
  await git(['checkout', '-q', 'dev'], { cwd: dir });
  const newer = await commitToOrigin(bare, 'main', { 'CHANGELOG.md': 'v2\n' });
  const out = (await clone([await record()])).records[0]!;
  t.notOk(out.error, JSON.stringify(out.error));
  t.equal(await branchOf(dir), 'main', 'on main again');
  t.equal(await head(dir), newer, 'at the new origin/main');
  t.equal((await git(['status', '--porcelain', '--untracked-files=all'], { cwd: dir })).stdout, '', 'clean');
  t.equal(out.checkout!.base_sha, newer);
});
