import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkGitBranchFormat, lstatIfPresent } from '@prompt-valet/core';
import { parseGitConfig, type ConfigEntry } from './git-config-file.js';

/**
 * The branches of a repository on this machine, read from its files as git's
 * files ref backend stores them (gitrepository-layout(5), git-pack-refs(1)),
 * instead of starting `git ls-remote` (a git, a sh and a git-upload-pack per
 * repository). The answer must be the one git would give, so anything not
 * plain is refused with a reason and the caller asks git after all: another
 * owner (git's safe.directory check), reftable or any extension, a commondir
 * or a .git file, a symlink or a symbolic ref under refs/heads, hidden refs,
 * a name git would reject, a malformed line anywhere.
 *
 * Every file is read without following a symlink (O_NOFOLLOW) and with a size
 * bound, and only paths below the repository the URL named are opened.
 */
export type LocalBranches = { ok: true; branches: string[] } | { ok: false; reason: string };

/** packed-refs past this is not read (git would; pv-tree asks git then). */
export const MAX_PACKED_REFS_BYTES = 64 * 1024 * 1024;
const MAX_CONFIG_BYTES = 1024 * 1024;
/** A loose ref is 41 bytes; HEAD `ref: refs/heads/<name>\n`. */
const MAX_REF_FILE_BYTES = 1024;
/** More loose branches than this are not walked (git is asked). */
const MAX_LOOSE_REFS = 1_000_000;

// Object format sha1 only: a sha256 repository has extensions.objectformat, which sends it to git.
const LOOSE_REF_RE = /^[0-9a-f]{40}\n$/;
const HEAD_RE = /^(?:ref: refs\/[^\s]+|[0-9a-f]{40})\n$/;
const PACKED_HEADER = '# pack-refs with:';
const HEADS = 'refs/heads/';
const PACKED_REF_RE = /^[0-9a-f]{40} (refs\/.+)$/;
const PACKED_PEEL_RE = /^\^[0-9a-f]{40}$/;

/** Thrown inside a read that meets something not plain; caught at the top and turned into the reason to ask git. */
class NotPlain extends Error {}
export function refuse(reason: string): never {
  throw new NotPlain(reason);
}

/** A value read, or why git must be asked instead. */
export type Found<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Run a read that may refuse: its value, or the reason (any unexpected error is a reason too: git is asked). */
export function attempt<T>(what: string, read: () => T): Found<T> {
  try {
    return { ok: true, value: read() };
  } catch (err) {
    if (err instanceof NotPlain) return { ok: false, reason: err.message };
    return { ok: false, reason: `cannot read ${what}: ${errnoOf(err) ?? (err as Error).message}` };
  }
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

/**
 * A branch git lists (core's checkGitBranchFormat: check_refname_format of
 * refs.c for `refs/heads/<branch>`). A component starting with "." or ending
 * in ".lock" is a bad name in packed-refs; in the folder git skips such
 * entries silently, and so does the walk, before it asks this.
 */
function gitListsBranch(branch: string): boolean {
  // Not valid UTF-8 on disk: Node's name is not git's, so the path would not be the file.
  return checkGitBranchFormat(branch).ok && !branch.includes('\uFFFD');
}

/**
 * Open for reading without following a symlink and without blocking on a
 * FIFO; undefined when missing, refused (see refuse) when it cannot be read.
 */
function openNoFollow(file: string): number | undefined {
  try {
    return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') return refuse(`${file} is a symlink`);
    return refuse(`cannot read ${file} (${code ?? String(err)})`);
  }
}

/** A regular file read whole, refusing a symlink, a special file or more than `max` bytes. Undefined when missing. */
function readBoundedFile(file: string, max: number): string | undefined {
  const fd = openNoFollow(file);
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return refuse(`${file} is not a regular file`);
    if (st.size > max) return refuse(`${file} is larger than ${max} bytes`);
    // One byte more than fstat said: a file that grew meanwhile is caught, not cut.
    const buf = Buffer.alloc(st.size + 1);
    let got = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got === buf.length) return refuse(`${file} changed while it was read`);
    }
    return buf.toString('utf8', 0, got);
  } finally {
    fs.closeSync(fd);
  }
}

const smallFileBuffer = Buffer.alloc(MAX_REF_FILE_BYTES + 1);

/**
 * A loose ref or HEAD: one open, one read, one close (a pass reads thousands
 * of them, so no fstat). Only a regular file yields text that passes the
 * caller's pattern: a FIFO is opened non-blocking and reads empty, a folder
 * fails to read, a symlink fails to open; a longer file fills the buffer and
 * is refused. Undefined when missing.
 */
function readRefFile(file: string): string | undefined {
  const fd = openNoFollow(file);
  if (fd === undefined) return undefined;
  try {
    const n = fs.readSync(fd, smallFileBuffer, 0, smallFileBuffer.length, 0);
    if (n === smallFileBuffer.length) return refuse(`${file} is larger than ${MAX_REF_FILE_BYTES} bytes`);
    return smallFileBuffer.toString('latin1', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * git's is_git_directory (setup.c) without following symlinks: objects/ and
 * refs/ folders and a valid HEAD; no commondir (its config and refs live
 * elsewhere). False when `dir` is not one (git may still find a repository
 * by another route: the caller asks git).
 */
function isPlainGitDirectory(dir: string): boolean {
  const objects = lstatIfPresent(path.join(dir, 'objects'));
  const refs = lstatIfPresent(path.join(dir, 'refs'));
  if (!objects?.isDirectory() || !refs?.isDirectory()) return false;
  if (lstatIfPresent(path.join(dir, 'commondir'))) refuse(`${dir} has a commondir file (its refs live elsewhere)`);
  const head = readRefFile(path.join(dir, 'HEAD'));
  return head !== undefined && HEAD_RE.test(head);
}

export interface GitDir {
  gitDir: string;
  /** the working tree whose owner git also checks, for a non-bare repository */
  workTree: string | undefined;
}

/**
 * Where git finds the repository at `repo`, as enter_repo (path.c) tries it:
 * `<repo>/.git`, then `<repo>`. The next tries (`<repo>.git`…) are left to git.
 */
export function locateGitDir(repo: string): GitDir {
  const dotGit = path.join(repo, '.git');
  const st = lstatIfPresent(dotGit);
  if (st) {
    if (st.isSymbolicLink()) refuse(`${dotGit} is a symlink`);
    if (st.isFile()) refuse(`${dotGit} is a file (a gitdir pointer)`);
    if (!st.isDirectory() || !isPlainGitDirectory(dotGit)) refuse(`${dotGit} is not a plain git directory`);
    return { gitDir: dotGit, workTree: repo };
  }
  if (!isPlainGitDirectory(repo)) refuse(`${repo} is not a plain git repository`);
  return { gitDir: repo, workTree: undefined };
}

/** git refuses a repository another user owns (safe.directory); its message is the answer then. */
export function checkOwner(where: GitDir, uid: number): void {
  for (const p of [where.gitDir, where.workTree]) {
    if (p === undefined) continue;
    const st = fs.statSync(p);
    if (st.uid !== uid) refuse(`${p} is owned by uid ${st.uid}, not ${uid} (git's safe.directory check decides)`);
  }
}

/** The repository's own config, parsed; format version 0 or 1 and no extension, include or worktree setting. */
export function readRepoConfig(gitDir: string): ConfigEntry[] {
  const text = readBoundedFile(path.join(gitDir, 'config'), MAX_CONFIG_BYTES) ?? '';
  const parsed = parseGitConfig(text);
  if (!parsed.ok) return refuse(`${gitDir}/config: ${parsed.reason}`);
  for (const e of parsed.entries) {
    if (e.section === 'include' || e.section === 'includeif') refuse(`${gitDir}/config includes other files`);
    if (e.section === 'extensions') refuse(`${gitDir}/config sets extensions.${e.key} (reftable, sha256, worktree config…)`);
    if (e.section === 'core' && e.key === 'repositoryformatversion' && e.value !== '0' && e.value !== '1') refuse(`${gitDir}/config: core.repositoryformatversion ${String(e.value)}`);
    if (e.section === 'core' && e.key === 'worktree') refuse(`${gitDir}/config sets core.worktree`);
  }
  return parsed.entries;
}

/** Loose branch names under refs/heads, recursively (pv-tree needs the names; each file's content is still checked). */
function readLooseHeads(gitDir: string, found: Set<string>): void {
  const walk = (dir: string, prefix: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (prefix === HEADS && errnoOf(err) === 'ENOENT') return;
      return refuse(`cannot read ${dir} (${errnoOf(err) ?? String(err)})`);
    }
    for (const e of entries) {
      // As loose_fill_ref_dir (refs/files-backend.c): hidden names and lock files are not refs.
      if (e.name.startsWith('.') || e.name.endsWith('.lock')) continue;
      const full = `${prefix}${e.name}`;
      const file = path.join(dir, e.name);
      if (e.isSymbolicLink()) refuse(`${file} is a symlink`);
      if (e.isDirectory()) {
        walk(file, `${full}/`);
        continue;
      }
      if (!e.isFile()) refuse(`${file} is not a regular file`);
      const branch = full.slice(HEADS.length);
      if (!gitListsBranch(branch)) refuse(`${full} is a name git rejects`);
      const content = readRefFile(file);
      if (content === undefined) refuse(`${file} went away while it was read`);
      if (content.startsWith('ref:')) refuse(`${full} is a symbolic ref`);
      if (!LOOSE_REF_RE.test(content)) refuse(`${full} does not hold one object id and a newline`);
      if (found.size >= MAX_LOOSE_REFS) refuse(`more than ${MAX_LOOSE_REFS} loose branches`);
      found.add(branch);
    }
  };
  const heads = path.join(gitDir, 'refs', 'heads');
  if (lstatIfPresent(heads)?.isSymbolicLink()) refuse(`${heads} is a symlink`);
  walk(heads, HEADS);
}

/** Branches in packed-refs; a loose ref of the same name overrides (and is already in `found`). */
function readPackedHeads(gitDir: string, loose: ReadonlySet<string>, found: Set<string>): void {
  const text = readBoundedFile(path.join(gitDir, 'packed-refs'), MAX_PACKED_REFS_BYTES);
  if (text === undefined || text === '') return;
  if (!text.endsWith('\n')) refuse('packed-refs: the last line is not terminated');
  const lines = text.slice(0, -1).split('\n');
  const seen = new Set<string>();
  let afterRef = false;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (n === 0 && line.startsWith(PACKED_HEADER)) continue;
    if (PACKED_PEEL_RE.test(line)) {
      if (!afterRef) refuse(`packed-refs line ${n + 1}: a peeled line without its ref`);
      afterRef = false;
      continue;
    }
    const m = PACKED_REF_RE.exec(line);
    if (!m) return refuse(`packed-refs line ${n + 1} is malformed`);
    const full = m[1]!;
    if (seen.has(full)) refuse(`packed-refs names ${full} twice`);
    seen.add(full);
    afterRef = true;
    if (!full.startsWith(HEADS)) continue;
    const name = full.slice(HEADS.length);
    if (!gitListsBranch(name)) refuse(`packed-refs: ${full} is a name git rejects`);
    if (!loose.has(name)) found.add(name);
  }
}

/** Refs hidden from ls-remote by the repository's config are git's to apply. */
function refuseHiddenRefs(entries: readonly ConfigEntry[]): void {
  for (const e of entries) {
    if ((e.section === 'uploadpack' || e.section === 'transfer') && e.key === 'hiderefs') refuse(`${e.section}.hiderefs is set`);
  }
}

/**
 * The branches of the repository at `repo` (an absolute path, as in a
 * `file://` URL), or why git must be asked. Loose refs are read before
 * packed-refs: `git pack-refs` writes packed-refs before it deletes the loose
 * files, so this order never misses a ref that is being packed.
 */
export function readLocalBranches(repo: string, uid: number): LocalBranches {
  const read = attempt(repo, () => {
    const where = locateGitDir(repo);
    checkOwner(where, uid);
    refuseHiddenRefs(readRepoConfig(where.gitDir));
    const loose = new Set<string>();
    readLooseHeads(where.gitDir, loose);
    const all = new Set(loose);
    readPackedHeads(where.gitDir, loose, all);
    return [...all].sort();
  });
  return read.ok ? { ok: true, branches: read.value } : read;
}
