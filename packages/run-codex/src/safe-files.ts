import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkRelativePath, PvError } from '@prompt-valet/core';

/**
 * Reading what the agent left and writing into its checkout without
 * following a symlink it planted: a last-message file replaced by a link to
 * /proc/self/environ, or a checkout folder that is a link to the config
 * folder, would otherwise make pv-run-codex (outside the jail) copy or
 * overwrite what the agent cannot reach. The agent is gone when these run,
 * so nothing changes between the check and the use.
 */
export class UnsafePathError extends PvError {
  declare readonly code: 'symlink' | 'not_a_file' | 'bad_path';
  constructor(code: 'symlink' | 'not_a_file' | 'bad_path', message: string) {
    super(code, message);
  }
}

/** At most `maxBytes` of a regular file, never through a symlink; undefined when missing. */
export function readFileNoFollow(file: string, maxBytes: number): { data: Buffer; truncated: boolean } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new UnsafePathError('symlink', `${file} is a symlink: not followed`);
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new UnsafePathError('not_a_file', `${file} is not a regular file: not read`);
    const buf = Buffer.alloc(Math.min(st.size, maxBytes));
    const n = buf.length > 0 ? fs.readSync(fd, buf, 0, buf.length, 0) : 0;
    return { data: buf.subarray(0, n), truncated: st.size > maxBytes };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write `rel` inside `root`, creating folders, refusing any component that
 * is a symlink or not a folder, and a final name that is a symlink.
 */
export function writeInsideNoFollow(root: string, rel: string, data: Buffer | string): string {
  const check = checkRelativePath(rel);
  if (!check.ok) throw new UnsafePathError('bad_path', `${rel}: ${check.reason}`);
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = path.join(dir, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!st) fs.mkdirSync(dir);
    else if (st.isSymbolicLink()) throw new UnsafePathError('symlink', `${dir} is a symlink: not followed`);
    else if (!st.isDirectory()) throw new UnsafePathError('not_a_file', `${dir} is not a folder`);
  }
  const file = path.join(dir, parts[parts.length - 1]!);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafePathError('symlink', `${file} is a symlink: not followed`);
    throw err;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new UnsafePathError('not_a_file', `${file} is not a regular file`);
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Replace a file the jail could write (e.g. the per-run config.toml) without following what is there. */
export function replaceFileNoFollow(file: string, data: Buffer | string, mode = 0o600): void {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile() || st.isSymbolicLink()) fs.rmSync(file, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, mode);
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}
