import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** fsync a folder so that a rename or link inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    await fh.sync();
  } catch (err) {
    // Some filesystems (and some network mounts) refuse fsync on folders;
    // the rename itself has still happened.
    if (!isErrno(err, 'EINVAL') && !isErrno(err, 'EBADF') && !isErrno(err, 'EPERM')) throw err;
  } finally {
    await fh?.close();
  }
}

export interface AtomicWriteOptions {
  mode?: number;
  /** fsync the file and its folder (default true). */
  durable?: boolean;
}

/** Write `data` to a hidden temporary name beside `file` (fsynced unless not durable); returns that name. */
async function writeTempBeside(file: string, data: string | Uint8Array, opts: AtomicWriteOptions): Promise<string> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    if (opts.durable !== false) await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return tmp;
}

/**
 * Write a file so that readers see either the old content or the new, never
 * a torn one: write a hidden temporary name in the same folder, fsync,
 * rename over the target, fsync the folder.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = await writeTempBeside(file, data, opts);
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  if (opts.durable !== false) await fsyncDir(path.dirname(file));
}

/**
 * Create `file` whole, only if no file has that name: written under a
 * temporary name, then hard-linked into place (link(2) fails with EEXIST
 * rather than replace, atomically), so a reader never sees it torn and of
 * any number of writers exactly one creates it. False when the name was
 * taken; what is there is left untouched.
 */
export async function createFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<boolean> {
  const tmp = await writeTempBeside(file, data, opts);
  try {
    await fsp.link(tmp, file);
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
  if (opts.durable !== false) await fsyncDir(path.dirname(file));
  return true;
}

export async function writeJsonAtomic(file: string, value: unknown, opts: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', opts);
}

/** Read a JSON file, or undefined when it does not exist. */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/**
 * In a catch block: go on when `err` carries one of `codes` (an errno such as
 * ENOENT, or one of Node's ERR_* codes), the case the caller handles; throw
 * anything else on, so no unforeseen error is hidden.
 */
export function expectErrno(err: unknown, ...codes: string[]): void {
  if (!codes.some((code) => isErrno(err, code))) throw err;
}

/** In a catch block around JSON.parse: go on for a SyntaxError, throw anything else on. */
export function expectSyntaxError(err: unknown): void {
  if (!(err instanceof SyntaxError)) throw err;
}

/** lstat, or undefined when nothing is there (ENOENT, ENOTDIR, or one of `alsoAbsent`); any other error is thrown. */
export function lstatIfPresent(p: fs.PathLike, ...alsoAbsent: string[]): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', ...alsoAbsent);
    return undefined;
  }
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}
