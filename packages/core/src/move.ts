import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { expectErrno, fsyncDir, isErrno } from './files.js';
import { PvError } from './errors.js';

/**
 * Moving a prompt file without ever replacing a name, and without needing to
 * own the file (docs/lifecycle.md). `renameat2(RENAME_NOREPLACE)` needs
 * write access to the two folders only, unlike `link(2)` under
 * `fs.protected_hardlinks = 1` (Debian's default), which refuses a file the
 * caller does not own. Node 20 has no binding for it; coreutils 9.1's
 * `mv -n -T` calls it (checked with strace), so it is run here, with `-v`:
 * mv itself says whether it moved the file.
 */
export type MoveOutcome = 'moved' | 'taken' | 'gone';

/** Bound on one `mv` (it is one system call; only a hung filesystem waits). */
const MV_TIMEOUT_MS = 30_000;

/** How many `x.N.…` names are tried before giving up: one bound for every caller. */
export const MAX_FREE_NAMES = 1000;

const PERMISSION_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/** A permission problem an operator can cause and fix: one line, no stack trace. */
export class FsPermissionError extends PvError {
  constructor(
    readonly errno: string,
    readonly path: string,
    message: string,
    cause?: unknown,
  ) {
    // The operator can fix it: a later try may succeed.
    super('permission_denied', message, { retryable: true, ...(cause === undefined ? {} : { cause }) });
  }
}

export function isPermissionError(err: unknown): boolean {
  if (err instanceof FsPermissionError) return true;
  return typeof err === 'object' && err !== null && PERMISSION_CODES.has(String((err as NodeJS.ErrnoException).code));
}

/** The user name of `uid` from /etc/passwd, or `uid N`. */
export function userName(uid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === uid) return name;
    }
  } catch (err) {
    expectErrno(err, 'ENOENT', 'EACCES');
    // no passwd file (a container): the number will do
  }
  return `uid ${uid}`;
}

export function serviceUser(): string {
  try {
    return os.userInfo().username;
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ERR_SYSTEM_ERROR');
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

function modeText(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** `/x (owner alice, mode 0700)`, or just the path when it cannot be looked at. */
export function describeOwner(p: string): string {
  try {
    const st = fs.lstatSync(p);
    return `${p} (owner ${userName(st.uid)}, mode ${modeText(st.mode)})`;
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return p;
  }
}

/**
 * The one line an operator reads for EACCES, EPERM or EROFS on `p`: the
 * path, its owner and mode, the service user, and what to do.
 */
export function describeFsError(err: unknown, p: string, action = 'change'): string {
  const code = String((err as NodeJS.ErrnoException)?.code ?? 'EACCES');
  const user = serviceUser();
  if (code === 'EROFS') return `${p} is on a read-only filesystem (EROFS): ${user} cannot ${action} it; mount it read-write`;
  return (
    `${describeOwner(p)}: ${user} may not ${action} it (${code}); ` +
    `make it writable for ${user} (chown ${user}, or chmod g+rwx for a group ${user} is in)`
  );
}

/** One line for an operator, when `err` is a permission problem (no stack trace); undefined otherwise. */
export function permissionLine(err: unknown): string | undefined {
  if (err instanceof FsPermissionError) return err.message;
  if (!isPermissionError(err)) return undefined;
  const p = (err as NodeJS.ErrnoException).path;
  return p ? describeFsError(err, p) : `${(err as Error).message} (as ${serviceUser()})`;
}

/** Turn a permission errno into FsPermissionError naming `p`; anything else is returned unchanged. */
export function asPermissionError(err: unknown, p: string, action?: string): unknown {
  if (err instanceof FsPermissionError || !isPermissionError(err)) return err;
  return new FsPermissionError(String((err as NodeJS.ErrnoException).code), p, describeFsError(err, p, action), err);
}

function errnoFromMv(stderr: string): string {
  if (/Permission denied/i.test(stderr)) return 'EACCES';
  if (/Operation not permitted/i.test(stderr)) return 'EPERM';
  if (/Read-only file system/i.test(stderr)) return 'EROFS';
  if (/No such file or directory/i.test(stderr)) return 'ENOENT';
  return 'EIO';
}

/**
 * `mv -n -v -T SRC DEST`; true when mv moved SRC. With `-v` (LC_ALL=C) it
 * prints `renamed 'SRC' -> 'DEST'`, or across filesystems `copied …` and
 * `removed 'SRC'`; when DEST exists it leaves both alone, prints nothing and
 * exits 0 (coreutils 9.1, checked).
 */
function runMv(src: string, dest: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile('mv', ['-n', '-v', '-T', '--', src, dest], { timeout: MV_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (!err) return resolve(/^(renamed|copied) /m.test(String(stdout)));
      const code = errnoFromMv(String(stderr));
      const e = Object.assign(new Error(`mv ${src} ${dest}: ${String(stderr).trim() || err.message}`), { code });
      reject(e);
    });
  });
}

async function lstatOrUndefined(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/**
 * Give `src` the name `dest`, never replacing an existing `dest`:
 * 'moved' (mv renamed src to dest), 'taken' (dest exists, src untouched) or
 * 'gone' (src vanished: someone else moved it first). Permission problems
 * throw FsPermissionError naming the folder that refused.
 *
 * 'moved' is mv's own word, not a look at the names afterwards: the moment
 * `x.prompt.md` exists a claimer may rename it to `x.running.md` again (the
 * same inode back under the source's name), which looked exactly like
 * "dest taken, src untouched" and sent a retry on to move the new claim's
 * file to `x.2.prompt.md`: two runs of one prompt.
 */
export async function moveNoReplace(src: string, dest: string): Promise<MoveOutcome> {
  const before = await lstatOrUndefined(src);
  if (!before) return 'gone';
  let moved: boolean;
  try {
    moved = await runMv(src, dest);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'gone';
    if (isPermissionError(err)) {
      // Which folder refused: the one the service user cannot write.
      const blame = (await canWrite(path.dirname(src))) ? path.dirname(dest) : path.dirname(src);
      throw asPermissionError(err, blame, 'rename files in');
    }
    throw err;
  }
  // (rename(2) gives EXDEV across filesystems and across mount points of one filesystem, systemd's
  // ReadWritePaths= bind mounts: mv then copies and unlinks, and says so; a move all the same.)
  if (moved) {
    await fsyncDir(path.dirname(dest));
    if (path.dirname(src) !== path.dirname(dest)) await fsyncDir(path.dirname(src));
    return 'moved';
  }
  // mv left both names alone: dest was there. src still ours, or moved by someone else meanwhile.
  const srcNow = await lstatOrUndefined(src);
  return srcNow && srcNow.ino === before.ino && srcNow.dev === before.dev ? 'taken' : 'gone';
}

async function canWrite(dir: string): Promise<boolean> {
  try {
    await fsp.access(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch (err) {
    expectErrno(err, 'EACCES', 'EPERM', 'EROFS', 'ENOENT');
    return false;
  }
}

/** `x` → `x`, then `x.2`, `x.3`, …: the stem of the n-th try. */
export function freeStemCandidate(stem: string, n: number): string {
  return n === 1 ? stem : `${stem}.${n}`;
}

/** `x` + `.done.md` → `x.done.md`, then `x.2.done.md`, `x.3.done.md`, … */
export function freeNameCandidate(stem: string, suffix: string, n: number): string {
  return `${freeStemCandidate(stem, n)}${suffix}`;
}

export interface FreeNameOptions {
  /** also skip a candidate stem this says is taken (pv-web: a stem in use in any state, or in finished/) */
  stemTaken?: (candidateStem: string) => Promise<boolean>;
}

/**
 * Move `src` into `dir` as `<stem><suffix>`, or the first free
 * `<stem>.N<suffix>`: the one unique-name loop (settle, retry to pending,
 * requeue, reason files). `beforeEach(dest)` runs before each try (the
 * ledger entry for that name is written first). Returns the final path, or
 * undefined when `src` is gone.
 */
export async function moveToFreeName(
  src: string,
  dir: string,
  stem: string,
  suffix: string,
  beforeEach?: (dest: string) => Promise<void>,
  opts: FreeNameOptions = {},
): Promise<string | undefined> {
  await fsp.mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw asPermissionError(err, dir, 'create folders in');
  });
  for (let n = 1; n <= MAX_FREE_NAMES; n++) {
    const dest = path.join(dir, freeNameCandidate(stem, suffix, n));
    if (await lstatOrUndefined(dest)) continue;
    if (opts.stemTaken && (await opts.stemTaken(freeStemCandidate(stem, n)))) continue;
    await beforeEach?.(dest);
    const outcome = await moveNoReplace(src, dest);
    if (outcome === 'moved') return dest;
    if (outcome === 'gone') return undefined;
  }
  throw new PvError('no_free_name', `no free name for ${stem}${suffix} in ${dir} after ${MAX_FREE_NAMES} tries`);
}
