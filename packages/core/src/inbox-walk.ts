import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isErrno } from './files.js';
import { isPermissionError } from './move.js';
import { PROMPT_SUFFIX } from './prompt-names.js';

/**
 * The one walk of the inbox (docs/lifecycle.md, "Complete files"): pv-claim
 * claims from it, pv-status and pv-web show it. A prompt is complete when it
 * is a `*.prompt.md` that is not hidden (nor inside a hidden folder), not
 * reached through a folder symlink, not zero bytes, and unchanged for the
 * settle window: every write changes mtime and ctime, and ctime cannot be
 * set back by a copy tool (scp -p, rsync -t), so "max(mtime, ctime) older
 * than the window" means the size and content have held still that long.
 * `*.PARTIAL` never matches.
 */
export interface InboxPrompt {
  /** absolute path */
  path: string;
  /** relative to the inbox */
  rel: string;
  ino: number;
  size: number;
  mtimeMs: number;
  /** the later of mtime and ctime: the last change of any kind */
  changedMs: number;
  /** a symlink, fifo, … : claimed only to be settled as an error, never read */
  kind: 'file' | 'symlink' | 'other';
}

export interface InboxWalkOptions {
  /** which state's files (default pending: `.prompt.md`) */
  suffix?: string;
  /** a folder that could not be read (EACCES, …): reported, the walk goes on */
  onProblem?: (dir: string, err: unknown) => void;
}

/** Every prompt file in the given state, complete or not, oldest first (by last change, then path). */
export async function listInboxPrompts(inbox: string, opts: InboxWalkOptions = {}): Promise<InboxPrompt[]> {
  const suffix = opts.suffix ?? PROMPT_SUFFIX.pending;
  const rels = await walk(inbox, suffix, opts.onProblem);
  const out: InboxPrompt[] = [];
  await Promise.all(
    rels.map(async (rel) => {
      const p = path.join(inbox, rel);
      try {
        out.push(promptFromStat(p, rel, await fsp.lstat(p)));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err; // claimed or moved meanwhile
      }
    }),
  );
  return out.sort((a, b) => a.changedMs - b.changedMs || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

function promptFromStat(p: string, rel: string, st: import('node:fs').Stats): InboxPrompt {
  const kind = st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
  return { path: p, rel, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, changedMs: Math.max(st.mtimeMs, st.ctimeMs), kind };
}

/**
 * One prompt named by its path relative to the inbox (a file event's name),
 * judged by the walk's rules: undefined unless `rel` is a plain relative path
 * (no `..`, no hidden part, no empty part) to a name ending in `suffix` whose
 * folders are real folders, not symlinks. The walk stays the truth (events
 * can be missed); this only lets a claimer try the named file first.
 */
export async function inboxPromptAt(inbox: string, rel: string, opts: Pick<InboxWalkOptions, 'suffix'> = {}): Promise<InboxPrompt | undefined> {
  const suffix = opts.suffix ?? PROMPT_SUFFIX.pending;
  const parts = rel.split('/');
  const name = parts[parts.length - 1] ?? '';
  if (path.isAbsolute(rel) || parts.some((p) => p === '' || p.startsWith('.'))) return undefined;
  if (!name.endsWith(suffix) || name.length <= suffix.length) return undefined;
  try {
    let dir = inbox;
    for (const folder of parts.slice(0, -1)) {
      dir = path.join(dir, folder);
      if (!(await fsp.lstat(dir)).isDirectory()) return undefined; // a symlink is not descended, as in the walk
    }
    const p = path.join(inbox, rel);
    const st = await fsp.lstat(p);
    if (st.isDirectory()) return undefined;
    return promptFromStat(p, rel, st);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isPermissionError(err)) return undefined; // the walk reports and decides
    throw err;
  }
}

/** Folders read between two turns of the event loop (see walk). */
const FOLDERS_PER_TURN = 64;

/**
 * Names ending in `suffix` below `root`, skipping hidden entries and never
 * descending through a symlink. A plain walk rather than a glob: glob
 * patterns do not match every legal name (a newline in a folder name), and
 * a prompt the valet cannot see is one it can neither run nor reject.
 *
 * One readdir after the other, synchronously, with a turn of the event loop
 * every FOLDERS_PER_TURN folders: over 5,000 branch folders ~40 ms of CPU and
 * ~9 MB, where a promise per folder (all in flight at once) cost ~100 ms and
 * grew pv-watcher by 30-60 MB that V8 kept (bench: idle); the turns keep a
 * file event that arrives meanwhile from waiting for the whole walk (pickup).
 */
async function walk(root: string, suffix: string, onProblem: InboxWalkOptions['onProblem']): Promise<string[]> {
  const out: string[] = [];
  const todo = [''];
  let read = 0;
  for (let rel = todo.pop(); rel !== undefined; rel = todo.pop()) {
    if (++read % FOLDERS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const dir = rel ? path.join(root, rel) : root;
    let entries: import('node:fs').Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (isPermissionError(err)) {
        onProblem?.(dir, err);
        continue;
      }
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue;
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) todo.push(child);
      else if (e.name.endsWith(suffix) && e.name.length > suffix.length) out.push(child);
    }
  }
  return out;
}

/** Is this prompt complete (non-empty and unchanged for the settle window)? */
export function isCompletePrompt(c: InboxPrompt, settleSeconds: number, now = Date.now()): boolean {
  if (c.kind !== 'file') return true; // never read: settled as an error at once
  if (c.size === 0) return false;
  return now - c.changedMs >= settleSeconds * 1000;
}
