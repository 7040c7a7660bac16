import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@prompt-valet/core';
import type { Reporter } from './report.js';

/**
 * The installer's only ways of changing the disk. Each compares first and
 * reports `unchanged` when nothing is to be done, which is what makes a
 * second run a no-op; with --dry-run each reports and writes nothing.
 */

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

export function ensureDir(r: Reporter, dir: string, mode = 0o755): boolean {
  const st = lstatOrUndefined(dir);
  if (st?.isDirectory()) {
    r.emit('unchanged', dir);
    return false;
  }
  if (st && st.isSymbolicLink() && fs.existsSync(dir) && fs.statSync(dir).isDirectory()) {
    r.emit('unchanged', dir, `symlink to ${fs.readlinkSync(dir)}`);
    return false;
  }
  if (st) throw new Error(`${dir} exists and is not a folder; move it away and rerun`);
  if (!r.dryRun) {
    fs.mkdirSync(dir, { recursive: true, mode });
    fs.chmodSync(dir, mode);
  }
  r.emit('created', dir);
  return true;
}

export type FileOutcome = 'created' | 'updated' | 'unchanged';

/** Write `content` at `file` with `mode` unless it already is exactly that. */
export async function ensureFile(r: Reporter, file: string, content: string | Buffer, mode: number, detail = ''): Promise<FileOutcome> {
  const outcome = await syncFile(file, content, mode, r.dryRun);
  r.emit(outcome, file, detail);
  return outcome;
}

/** ensureFile without a report line: for the many files of a deployed package. */
export async function syncFile(file: string, content: string | Buffer, mode: number, dryRun: boolean): Promise<FileOutcome> {
  const want = typeof content === 'string' ? Buffer.from(content) : content;
  const st = lstatOrUndefined(file);
  if (st?.isFile() && (st.mode & 0o7777) === mode && fs.readFileSync(file).equals(want)) return 'unchanged';
  if (st && !st.isFile()) throw new Error(`${file} exists and is not a regular file; move it away and rerun`);
  if (!dryRun) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, want, { mode, durable: false });
    fs.chmodSync(file, mode);
  }
  return st ? 'updated' : 'created';
}

/** Make `link` a symlink to `target`; a different thing already there is left alone. */
export function ensureSymlink(r: Reporter, link: string, target: string, detail = ''): FileOutcome | 'kept' {
  const st = lstatOrUndefined(link);
  if (st?.isSymbolicLink() && fs.readlinkSync(link) === target) {
    r.emit('unchanged', link, detail);
    return 'unchanged';
  }
  if (st) return 'kept';
  if (!r.dryRun) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(target, link);
  }
  r.emit('created', link, `-> ${target}${detail ? `; ${detail}` : ''}`);
  return 'created';
}

export function isOwnFile(file: string, marker: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

export function removePath(r: Reporter, p: string, detail = ''): void {
  if (!r.dryRun) fs.rmSync(p, { recursive: true, force: true });
  r.emit('removed', p, detail);
}
