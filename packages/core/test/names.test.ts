import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  branchToFolder,
  checkBranchName,
  checkOwnerName,
  checkRelativePath,
  checkRepoName,
  folderToBranch,
  resolveInside,
  slugify,
} from '../src/names.js';
import { HOSTILE_NAMES } from '../src/hostile-names.js';

const GOOD_REPOS = ['prompt-valet', 'a', 'A.b_c-1', 'x.git', '_private', 'v1.2.3'];
const GOOD_BRANCHES = ['main', 'feature/x', 'release-1.2', 'user/alice/topic', 'fix_123', 'ünïcode', 'a.b', 'HEAD'];

t.test('good owner and repository names pass', async (t) => {
  for (const n of GOOD_REPOS) {
    t.ok(checkRepoName(n).ok, `repo ${n}`);
    t.ok(checkOwnerName(n).ok, `owner ${n}`);
  }
});

t.test('good branch names pass', async (t) => {
  for (const n of GOOD_BRANCHES) t.ok(checkBranchName(n).ok, `branch ${n}`);
});

t.test('every hostile name is refused as owner, repository and branch, with a reason', async (t) => {
  for (const { name, why } of HOSTILE_NAMES) {
    for (const [kind, check] of [
      ['owner', checkOwnerName],
      ['repo', checkRepoName],
      ['branch', checkBranchName],
    ] as const) {
      const r = check(name);
      if (kind === 'branch' && why.startsWith('ok-as-branch')) continue;
      t.notOk(r.ok, `${kind} ${JSON.stringify(name)} refused (${why})`);
      if (!r.ok) t.match(r.reason, /\S/, 'with a reason');
    }
  }
});

t.test('git-specific branch rules', async (t) => {
  for (const n of ['a..b', 'a.lock', 'a/.hidden', 'a//b', '/a', 'a/', 'a.', '@', 'a@{1}', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a[b', 'a\\b', 'a b', '-x']) {
    t.notOk(checkBranchName(n).ok, `branch ${JSON.stringify(n)} refused`);
  }
});

t.test('the branch folder rule is reversible and one component', async (t) => {
  for (const b of GOOD_BRANCHES) {
    const folder = branchToFolder(b);
    t.notOk(folder.includes('/'), `${b} -> ${folder} is one component`);
    t.equal(folderToBranch(folder), b, `${b} round-trips`);
  }
  t.equal(branchToFolder('feature/x'), 'feature~x');
});

t.test('relative paths must stay inside their root', async (t) => {
  t.ok(checkRelativePath('repo/main/x.prompt.md').ok);
  for (const p of ['', '/etc/passwd', '../x', 'a/../b', 'a/./b', 'a//b', 'a/\0b', '..']) {
    t.notOk(checkRelativePath(p).ok, `${JSON.stringify(p)} refused`);
  }
});

t.test('resolveInside follows symlinks and refuses an escape', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-names-'));
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-outside-'));
  t.teardown(() => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });
  fs.mkdirSync(path.join(root, 'repo', 'main'), { recursive: true });
  fs.symlinkSync(outside, path.join(root, 'repo', 'evil'));
  fs.symlinkSync(path.join(root, 'repo', 'main'), path.join(root, 'repo', 'alias'));
  const real = fs.realpathSync(root);
  t.equal(await resolveInside(root, 'repo/main/x.prompt.md'), path.join(real, 'repo/main/x.prompt.md'), 'a file that does not exist yet');
  t.equal(await resolveInside(root, 'repo/alias/x.md'), path.join(real, 'repo/main/x.md'), 'a symlink inside the root is fine');
  await t.rejects(resolveInside(root, 'repo/evil/x.md'), { code: 'path_escape' });
  await t.rejects(resolveInside(root, 'repo/../../etc'), { code: 'path_escape' });
  await t.rejects(resolveInside(root, '/etc/passwd'), { code: 'path_escape' });
});

t.test('slugify makes a safe branch component', async (t) => {
  t.equal(slugify('P1c2-b'), 'p1c2-b');
  t.equal(slugify('Fix the Login Page!!'), 'fix-the-login-page');
  t.equal(slugify('Crème brûlée'), 'creme-brulee');
  t.equal(slugify('---'), 'prompt');
  t.equal(slugify('-oProxyCommand=x'), 'oproxycommand-x');
  t.ok(slugify('a'.repeat(100)).length <= 40);
  for (const { name } of HOSTILE_NAMES) t.ok(checkBranchName(`codex/${slugify(name)}-1`).ok, `slug of ${JSON.stringify(name)} is a valid branch`);
});
