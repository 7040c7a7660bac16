import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { git } from '@prompt-valet/core';
import { makeOrigin } from '@prompt-valet/testkit';
import { parseGitConfig } from '../src/git-config-file.js';
import { localPathOfUrl } from '../src/local-origin.js';
import { MAX_PACKED_REFS_BYTES, readLocalBranches } from '../src/local-refs.js';
import { parseLsRemoteOutput } from '../src/remote-branches.js';

const UID = process.geteuid!();

async function scratch(t: Test): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-local-refs-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** What the real git answers for `url`, as pv-tree reads it (branch names, sorted). */
async function gitHeads(url: string, cwd: string): Promise<string[]> {
  const { stdout } = await git(['ls-remote', '--heads', url], { cwd });
  return parseLsRemoteOutput(stdout).branches.sort();
}

/** The in-process answer must be ok and equal git's, for the path and for its file:// URL. */
async function sameAsGit(t: Test, repo: string, cwd: string, expected: string[], what: string) {
  const local = readLocalBranches(repo, UID);
  t.same(local, { ok: true, branches: expected }, `${what}: read in-process`);
  t.same(await gitHeads(repo, cwd), expected, `${what}: git ls-remote --heads <path>`);
  t.same(await gitHeads(`file://${repo}`, cwd), expected, `${what}: git ls-remote --heads file://<path>`);
}

async function sha(repo: string, ref = 'refs/heads/main'): Promise<string> {
  return (await git(['rev-parse', ref], { cwd: repo })).stdout.trim();
}

t.test('the branches read from the files equal git ls-remote --heads in every plain state', async (t) => {
  const dir = await scratch(t);
  const bare = await makeOrigin(path.join(dir, 'o.git'), { branches: ['main', 'feature/x/y', 'feature/z', '-dash'] });
  const main = await sha(bare);
  await sameAsGit(t, bare, dir, ['-dash', 'feature/x/y', 'feature/z', 'main'], 'loose only, nested names');

  await git(['pack-refs', '--all'], { cwd: bare });
  t.notOk(fs.existsSync(path.join(bare, 'refs', 'heads', 'main')), 'packed: no loose main any more');
  await sameAsGit(t, bare, dir, ['-dash', 'feature/x/y', 'feature/z', 'main'], 'packed only');

  // A new commit on main (loose, overriding the packed one) and a branch that exists only loose.
  const ident = ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid'];
  const next = (await git([...ident, 'commit-tree', '-p', main, '-m', 'next', `${main}^{tree}`], { cwd: bare })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', next], { cwd: bare });
  await git(['update-ref', 'refs/heads/late', next], { cwd: bare });
  t.ok(fs.existsSync(path.join(bare, 'refs', 'heads', 'main')), 'main is loose again, and packed');
  t.notSame(await sha(bare), main);
  await sameAsGit(t, bare, dir, ['-dash', 'feature/x/y', 'feature/z', 'late', 'main'], 'packed and loose, a loose override');

  await git(['update-ref', '-d', 'refs/heads/feature/z'], { cwd: bare });
  await sameAsGit(t, bare, dir, ['-dash', 'feature/x/y', 'late', 'main'], 'a branch deleted after packing');

  // Names git skips while reading the folder: hidden ones and lock files, files and folders alike.
  await fsp.writeFile(path.join(bare, 'refs', 'heads', 'main.lock'), `${main}\n`);
  await fsp.writeFile(path.join(bare, 'refs', 'heads', '.hidden'), `${main}\n`);
  await fsp.mkdir(path.join(bare, 'refs', 'heads', '.dot'));
  await fsp.writeFile(path.join(bare, 'refs', 'heads', '.dot', 'x'), `${main}\n`);
  await sameAsGit(t, bare, dir, ['-dash', 'feature/x/y', 'late', 'main'], 'lock files and hidden names');

  // git (2.39 here) lists a branch whose commit is missing; so does the reader.
  await fsp.writeFile(path.join(bare, 'refs', 'heads', 'ghost'), `${'1'.repeat(40)}\n`);
  await sameAsGit(t, bare, dir, ['-dash', 'feature/x/y', 'ghost', 'late', 'main'], 'a branch whose object is missing');
});

t.test('an empty repository, and a non-bare origin whose refs are in <path>/.git', async (t) => {
  const dir = await scratch(t);
  const empty = path.join(dir, 'empty.git');
  await git(['init', '--quiet', '--bare', empty]);
  await sameAsGit(t, empty, dir, [], 'empty bare repository');

  const bare = await makeOrigin(path.join(dir, 'src.git'), { branches: ['main', 'dev'] });
  const worktree = path.join(dir, 'plain');
  await git(['clone', '--quiet', bare, worktree]);
  await git(['branch', 'topic'], { cwd: worktree });
  await sameAsGit(t, worktree, dir, ['main', 'topic'], 'non-bare origin');
});

/** A repository that must not be read in-process: the reason matches `why`. */
function refused(t: Test, repo: string, why: RegExp, what: string) {
  const local = readLocalBranches(repo, UID);
  t.match(local, { ok: false, reason: why }, what);
}

t.test('anything not plain is refused with a reason (pv-tree then asks git)', async (t) => {
  const dir = await scratch(t);
  const fresh = async (name: string, branches = ['main', 'dev']) => makeOrigin(path.join(dir, `${name}.git`), { branches });

  refused(t, path.join(dir, 'missing.git'), /not a plain git repository/, 'a missing origin');

  const other = await fresh('other');
  await fsp.chown(other, 65534, 65534);
  refused(t, other, /owned by uid 65534/, 'owned by another user');

  const reftable = await fresh('reftable');
  await git(['config', 'core.repositoryformatversion', '1'], { cwd: reftable });
  await git(['config', 'extensions.refStorage', 'reftable'], { cwd: reftable });
  refused(t, reftable, /extensions\.refstorage/, 'an extension');

  const v2 = await fresh('v2');
  await git(['config', 'core.repositoryformatversion', '2'], { cwd: v2 });
  refused(t, v2, /repositoryformatversion 2/, 'an unknown format version');

  const common = await fresh('common');
  await fsp.writeFile(path.join(common, 'commondir'), '../other.git\n');
  refused(t, common, /commondir/, 'a commondir file');

  const pointer = path.join(dir, 'pointer');
  await fsp.mkdir(pointer);
  await fsp.writeFile(path.join(pointer, '.git'), `gitdir: ${await fresh('target')}\n`);
  refused(t, pointer, /gitdir pointer/, 'a .git file');

  const linked = await fresh('linked');
  await fsp.symlink(path.join(linked, 'refs', 'heads', 'main'), path.join(linked, 'refs', 'heads', 'alias'));
  refused(t, linked, /alias is a symlink/, 'a symlink under refs/heads');

  const symbolic = await fresh('symbolic');
  await git(['symbolic-ref', 'refs/heads/alias', 'refs/heads/main'], { cwd: symbolic });
  refused(t, symbolic, /symbolic ref/, 'a symbolic ref under refs/heads');

  for (const key of ['uploadpack.hideRefs', 'transfer.hideRefs']) {
    const hidden = await fresh(`hidden-${key}`);
    await git(['config', key, 'refs/heads/dev'], { cwd: hidden });
    refused(t, hidden, /hiderefs is set/, key);
    t.same(await gitHeads(hidden, dir), ['main'], `${key}: git hides dev, so the reader must not answer`);
  }

  const included = await fresh('included');
  await git(['config', 'include.path', '/dev/null'], { cwd: included });
  refused(t, included, /includes other files/, 'an include in the origin config');

  const badPacked = await fresh('bad-packed');
  await git(['pack-refs', '--all'], { cwd: badPacked });
  await fsp.appendFile(path.join(badPacked, 'packed-refs'), 'not a ref line\n');
  refused(t, badPacked, /packed-refs line \d+ is malformed/, 'a malformed packed-refs line');

  const badLoose = await fresh('bad-loose');
  await fsp.writeFile(path.join(badLoose, 'refs', 'heads', 'dev'), 'garbage\n');
  refused(t, badLoose, /does not hold one object id/, 'a malformed loose ref');

  const badName = await fresh('bad-name');
  await fsp.writeFile(path.join(badName, 'refs', 'heads', 'a..b'), `${await sha(badName)}\n`);
  refused(t, badName, /a\.\.b is a name git rejects/, 'a name git rejects');

  const huge = await fresh('huge');
  const fd = await fsp.open(path.join(huge, 'packed-refs'), 'w');
  await fd.truncate(MAX_PACKED_REFS_BYTES + 1);
  await fd.close();
  refused(t, huge, /larger than/, 'a packed-refs past the bound');
});

t.test('URLs: file:///abs and /abs are local; anything git might read otherwise is not', async (t) => {
  t.equal(localPathOfUrl('file:///srv/origins/acme/widget.git'), '/srv/origins/acme/widget.git');
  t.equal(localPathOfUrl('/srv/origins/acme/widget'), '/srv/origins/acme/widget');
  for (const url of ['https://github.com/acme/widget.git', 'git@github.com:acme/widget.git', 'ssh://h/x', 'git://h/x', 'relative/path', '../up',
    'file://host/srv/x', 'file://relative', '/srv/a/../b', '/srv//b', '/srv/b/', '/srv/a%20b', 'file:///srv/a%20b', '/srv/a b', '/', 'file:///', '~/x']) {
    t.equal(localPathOfUrl(url), undefined, url);
  }
});

t.test('the config reader follows git for values and refuses what it does not take', async (t) => {
  const ok = parseGitConfig('[core]\n\tbare = true ; a comment\n[remote "origin"]\n\turl = "/srv/a # b"  # comment\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[Remote "Origin"]\n\tURL = x\\ty\n\tflag\n');
  t.same(ok, {
    ok: true,
    entries: [
      { section: 'core', subsection: undefined, key: 'bare', value: 'true' },
      { section: 'remote', subsection: 'origin', key: 'url', value: '/srv/a # b' },
      { section: 'remote', subsection: 'origin', key: 'fetch', value: '+refs/heads/*:refs/remotes/origin/*' },
      { section: 'remote', subsection: 'Origin', key: 'url', value: 'x\ty' },
      { section: 'remote', subsection: 'Origin', key: 'flag', value: null },
    ],
  });
  for (const [text, why] of [
    ['[core]\n\tx = a \\\n b\n', /continued on the next line/],
    ['[remote.origin]\n\turl = x\n', /section header/],
    ['[remote "origin"] url = x\n', /text after the section header/],
    ['url = x\n', /before any section/],
    ['[core]\n\tx = "open\n', /quote left open/],
    ['[core]\n\tx = \\q\n', /unknown escape/],
    ['[core]\r\n\tx = 1\r\n', /CR/],
    ['[core]\n\tx y\n', /neither "="/],
  ] as const) {
    t.match(parseGitConfig(text), { ok: false, reason: why }, JSON.stringify(text));
  }
  // What git itself makes of the first accepted file, to keep the reader honest.
  const dir = await scratch(t);
  const file = path.join(dir, 'config');
  await fsp.writeFile(file, '[remote "origin"]\n\turl = "/srv/a # b"  # comment\n[Remote "Origin"]\n\tURL = x\\ty\n');
  const { stdout } = await git(['config', '-f', file, '--get-all', 'remote.origin.url']);
  t.equal(stdout, '/srv/a # b');
  t.equal((await git(['config', '-f', file, '--get-all', 'remote.Origin.url'])).stdout, 'x\ty');
});
