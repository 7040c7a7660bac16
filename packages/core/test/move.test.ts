import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { claimLockPath, inheritedClaimLock, takeLock } from '../src/claim-lock.js';
import { describeFsError, moveNoReplace, moveToFreeName } from '../src/move.js';
import { REPO_ROOT_FOR_TESTS } from './paths.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-move-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('moveNoReplace: moved, taken (both untouched), gone', async (t) => {
  const dir = tmp(t);
  const a = path.join(dir, 'x.prompt.md');
  const b = path.join(dir, 'x.running.md');
  fs.writeFileSync(a, 'new prompt');
  fs.writeFileSync(b, 'running prompt');
  t.equal(await moveNoReplace(a, b), 'taken');
  t.equal(fs.readFileSync(a, 'utf8'), 'new prompt', 'source untouched');
  t.equal(fs.readFileSync(b, 'utf8'), 'running prompt', 'target untouched');
  fs.unlinkSync(b);
  t.equal(await moveNoReplace(a, b), 'moved');
  t.notOk(fs.existsSync(a));
  t.equal(fs.readFileSync(b, 'utf8'), 'new prompt');
  t.equal(await moveNoReplace(a, path.join(dir, 'y')), 'gone');
});

t.test('of many racing moves to one name exactly one wins; nothing is lost', async (t) => {
  const dir = tmp(t);
  const sources = Array.from({ length: 30 }, (_, i) => {
    const p = path.join(dir, `s${i}`);
    fs.writeFileSync(p, String(i));
    return p;
  });
  const results = await Promise.all(sources.map((s) => moveNoReplace(s, path.join(dir, 'target'))));
  t.equal(results.filter((r) => r === 'moved').length, 1);
  t.equal(results.filter((r) => r === 'taken').length, 29);
  t.equal(fs.readdirSync(dir).length, 30, '29 sources + the target');
});

t.test('moveToFreeName picks x.2.done.md, x.3.done.md … when taken', async (t) => {
  const dir = tmp(t);
  const dest = path.join(dir, 'finished', 'repo', 'main');
  const moved: string[] = [];
  for (let i = 0; i < 3; i++) {
    const src = path.join(dir, 'x.done.md');
    fs.writeFileSync(src, `run ${i}`);
    moved.push(path.basename((await moveToFreeName(src, dest, 'x', '.done.md'))!));
  }
  t.same(moved, ['x.done.md', 'x.2.done.md', 'x.3.done.md']);
  t.equal(fs.readFileSync(path.join(dest, 'x.done.md'), 'utf8'), 'run 0', 'the first is never overwritten');
});

/**
 * An `mv` first on PATH that does the real move, then, once (while `armed`
 * exists), plays a claimer that takes the file on at once: DEST back to
 * SRC's name, as pv-claim renames the x.prompt.md that pv-settle's retry has
 * just made into x.running.md. That is the moment between the rename and
 * any look the mover takes afterwards.
 */
function mvThenClaimedBack(t: { teardown(fn: () => void): void }, dir: string): { armed: string } {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const armed = path.join(dir, 'armed');
  fs.writeFileSync(path.join(bin, 'mv'), [
    '#!/bin/sh',
    '/usr/bin/mv "$@" || exit $?',
    'eval "src=\\${$(($# - 1))}" && eval "dest=\\${$#}"',
    `if rm ${JSON.stringify(armed)} 2>/dev/null; then /usr/bin/mv -n -T -- "$dest" "$src" >/dev/null; fi`,
    '',
  ].join('\n'), { mode: 0o755 });
  fs.writeFileSync(armed, '');
  const cleanPath = process.env.PATH;
  process.env.PATH = `${bin}:${cleanPath ?? '/usr/bin:/bin'}`;
  t.teardown(() => {
    process.env.PATH = cleanPath;
  });
  return { armed };
}

t.test('a file taken on by someone else right after the rename was still moved, and is never moved twice', async (t) => {
  const dir = tmp(t);
  const running = path.join(dir, 'x.running.md');
  const pending = path.join(dir, 'x.prompt.md');
  fs.writeFileSync(running, 'the prompt');
  const ino = fs.lstatSync(running).ino;
  mvThenClaimedBack(t, dir);
  // The retry's move: x.running.md → x.prompt.md, then a claimer makes it x.running.md again
  // (same inode). Judged by the names afterwards this looked like "x.prompt.md was taken", and
  // the retry moved the new claim's x.running.md on to x.2.prompt.md: two runs of one prompt.
  t.equal(await moveToFreeName(running, dir, 'x', '.prompt.md'), pending, 'moved to x.prompt.md, as mv did');
  t.same(fs.readdirSync(dir).filter((n) => n.endsWith('.md')), ['x.running.md'], 'the claimer keeps its x.running.md; no x.2.prompt.md');
  t.equal(fs.lstatSync(running).ino, ino);

  fs.renameSync(running, pending);
  fs.writeFileSync(path.join(dir, 'armed'), '');
  t.equal(await moveNoReplace(pending, running), 'moved', 'moveNoReplace says what mv did');
});

// The kernel fact the lifecycle rests on: a user who may write the folder can
// move a file it does not own, where link(2) fails (fs.protected_hardlinks).
t.test('a non-root user moves a file owned by root; link(2) would fail', { skip: process.getuid?.() !== 0 && 'needs root to switch users' }, async (t) => {
  const dir = tmp(t);
  fs.chmodSync(dir, 0o777);
  const src = path.join(dir, 'x.prompt.md');
  fs.writeFileSync(src, 'root owns this', { mode: 0o644 });
  const asNobody = (script: string) =>
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  t.equal(fs.readFileSync('/proc/sys/fs/protected_hardlinks', 'utf8').trim(), '1', 'protected_hardlinks is on here');
  const moveJs = JSON.stringify(path.join(REPO_ROOT_FOR_TESTS, 'packages/core/dist/move.js'));
  const out = asNobody(`
    import * as fs from 'node:fs';
    import { moveNoReplace } from ${moveJs};
    let link = 'linked';
    try { fs.linkSync(${JSON.stringify(src)}, ${JSON.stringify(path.join(dir, 'x.link.md'))}); } catch (e) { link = e.code; }
    console.log(link, await moveNoReplace(${JSON.stringify(src)}, ${JSON.stringify(path.join(dir, 'x.running.md'))}));
  `);
  t.equal(out.trim(), 'EPERM moved', 'link refused, mv -n moved it');
  t.equal(fs.statSync(path.join(dir, 'x.running.md')).uid, 0, 'still root\'s file, same inode');
});

t.test('a folder the user may not write: one line naming path, owner, mode, user and fix', async (t) => {
  const line = describeFsError(Object.assign(new Error('x'), { code: 'EACCES' }), '/');
  t.match(line, /^\/ \(owner root, mode 0755\): \S+ may not change it \(EACCES\); make it writable for/);
  t.notMatch(line, /\n/);
});

t.test('takeLock: exclusive, dropped when released; inheritedClaimLock needs the locked descriptor', async (t) => {
  const dir = tmp(t);
  const file = claimLockPath(dir, 'test-lock');
  const lock = await takeLock(file);
  t.ok(lock, 'taken');
  t.equal(await takeLock(file), undefined, 'busy for anyone else');
  t.equal(inheritedClaimLock({ PV_CLAIM_LOCK: 'test-lock' }, dir)?.id, 'test-lock', 'this process holds it');
  t.equal(inheritedClaimLock({ PV_CLAIM_LOCK: 'other' }, dir), undefined);
  t.equal(inheritedClaimLock({ PV_CLAIM_LOCK: '../x' }, dir), undefined, 'an id naming another place is no lock');
  await lock!.release();
  t.equal(inheritedClaimLock({ PV_CLAIM_LOCK: 'test-lock' }, dir), undefined, 'released: not held');
  const again = await takeLock(file);
  t.ok(again, 'free again once released');
  await again!.release();
});

t.test('a move across two bind mounts of one filesystem (systemd ReadWritePaths=) is a move, not a vanished file', async (t) => {
  // rename(2) answers EXDEV across mount points even on one filesystem; mv then copies and
  // unlinks, and the copy has a new inode. A private mount namespace makes such a pair here.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-move-bind-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const d of ['inbox', 'finished', 'mnt-inbox', 'mnt-finished']) fs.mkdirSync(path.join(dir, d));
  fs.writeFileSync(path.join(dir, 'inbox', 'x.done.md'), 'work\n');
  const core = pathToFileURL(path.join(REPO_ROOT_FOR_TESTS, 'packages', 'core', 'dist', 'index.js')).href;
  const script = `import { moveNoReplace } from ${JSON.stringify(core)};
console.log(await moveNoReplace(${JSON.stringify(path.join(dir, 'mnt-inbox', 'x.done.md'))}, ${JSON.stringify(path.join(dir, 'mnt-finished', 'x.done.md'))}));`;
  const res = spawnSync('unshare', ['-m', 'sh', '-c',
    `mount --make-rprivate / && mount --bind "$1/inbox" "$1/mnt-inbox" && mount --bind "$1/finished" "$1/mnt-finished" && exec "$2" --input-type=module -e "$3"`,
    'sh', dir, process.execPath, script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(res.status, 0, res.stderr);
  t.equal(res.stdout.trim(), 'moved');
  t.notOk(fs.existsSync(path.join(dir, 'inbox', 'x.done.md')), 'the source name is gone');
  t.equal(fs.readFileSync(path.join(dir, 'finished', 'x.done.md'), 'utf8'), 'work\n', 'the content arrived');
});
