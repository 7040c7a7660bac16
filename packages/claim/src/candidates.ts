import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isErrno, PROMPT_SUFFIX } from '@prompt-valet/core';

/**
 * Finding claimable prompts. A prompt is complete when it is a `*.prompt.md`
 * that is not hidden (nor inside a hidden folder), not zero bytes, and has
 * not changed for the settle window: every write changes mtime and ctime,
 * and ctime cannot be set back by a copy tool (scp -p, rsync -t), so
 * "max(mtime, ctime) older than the window" means the size and content have
 * held still that long. `*.PARTIAL` never matches the pattern.
 */
export interface Candidate {
  /** absolute path of `x.prompt.md` */
  path: string;
  /** relative to the inbox */
  rel: string;
  ino: number;
  size: number;
  /** the later of mtime and ctime: the last change of any kind */
  changedMs: number;
  /** a symlink, fifo, … : claimed only to be settled as an error, never read */
  kind: 'file' | 'symlink' | 'other';
}

export interface FindOptions {
  inbox: string;
  settleSeconds: number;
  now?: number;
}

/** Every pending prompt in the inbox, complete or not, oldest first (by last change, then path). */
export async function listPending(inbox: string, suffix: string = PROMPT_SUFFIX.pending): Promise<Candidate[]> {
  const rels = await walk(inbox, '', suffix);
  const out: Candidate[] = [];
  await Promise.all(
    rels.map(async (rel) => {
      const p = path.join(inbox, rel);
      try {
        const st = await fsp.lstat(p);
        const kind = st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
        out.push({ path: p, rel, ino: st.ino, size: st.size, changedMs: Math.max(st.mtimeMs, st.ctimeMs), kind });
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err; // claimed or moved meanwhile
      }
    }),
  );
  return out.sort((a, b) => a.changedMs - b.changedMs || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/**
 * Names ending in `suffix` below `dir`, skipping hidden entries and never
 * descending through a symlink. A plain walk rather than a glob: glob
 * patterns do not match every legal name (a newline in a folder name), and
 * a prompt the valet cannot see is one it can neither run nor reject.
 */
async function walk(root: string, rel: string, suffix: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(rel ? path.join(root, rel) : root, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EACCES')) return [];
    throw err;
  }
  const out: string[] = [];
  const below: Promise<string[]>[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) below.push(walk(root, child, suffix));
    else if (e.name.endsWith(suffix) && e.name.length > suffix.length) out.push(child);
  }
  for (const more of await Promise.all(below)) out.push(...more);
  return out;
}

/** Is this candidate complete (non-empty and unchanged for the settle window)? */
export function isComplete(c: Candidate, opts: FindOptions): boolean {
  const now = opts.now ?? Date.now();
  if (c.kind !== 'file') return true; // never read: settled as an error at once
  if (c.size === 0) return false;
  return now - c.changedMs >= opts.settleSeconds * 1000;
}
