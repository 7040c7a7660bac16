import type { Dirent } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkOwnerName, checkRepoName, isErrno, pathExists, type ValetConfig } from '@prompt-valet/core';

/**
 * The clones under repos_root, laid out `<owner>/<repo>`. Dot-folders at
 * either level (`.worktrees`, `.trash`, …) are valet state, not repositories.
 * In legacy_single_owner mode only the configured owner's clones count.
 */
export interface Clone {
  owner: string;
  repo: string;
  /** `owner/repo` */
  key: string;
  dir: string;
}

export interface Discovery {
  /** clones with valid names and a `.git` (sorted by key) */
  clones: Clone[];
  /** folders with valid names but no `.git`: never treated as "no branches" */
  notGit: Clone[];
  /** folders whose owner or repository name fails core's validation */
  invalid: { owner: string; repo?: string; rel: string; reason: string }[];
  /** owner folders that exist under repos_root (valid names) */
  owners: Set<string>;
}

export async function readDirents(dir: string): Promise<Dirent[] | undefined> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** A directory, following a symlink (an operator may link a clone in). */
async function isDirectory(entry: Dirent, parent: string): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return (await fsp.stat(path.join(parent, entry.name))).isDirectory();
  } catch {
    return false;
  }
}

export async function discoverClones(config: ValetConfig): Promise<Discovery> {
  const out: Discovery = { clones: [], notGit: [], invalid: [], owners: new Set() };
  const root = config.repos_root;
  const ownerEntries = (await readDirents(root)) ?? [];
  const legacy = config.inbox_mode === 'legacy_single_owner';
  for (const o of ownerEntries) {
    if (o.name.startsWith('.')) continue;
    if (legacy && o.name !== config.git_owner) continue;
    if (!(await isDirectory(o, root))) continue;
    const ownerCheck = checkOwnerName(o.name);
    if (!ownerCheck.ok) {
      out.invalid.push({ owner: o.name, rel: o.name, reason: ownerCheck.reason });
      continue;
    }
    out.owners.add(o.name);
    const ownerDir = path.join(root, o.name);
    for (const r of (await readDirents(ownerDir)) ?? []) {
      if (r.name.startsWith('.')) continue;
      if (!(await isDirectory(r, ownerDir))) continue;
      const rel = `${o.name}/${r.name}`;
      const repoCheck = checkRepoName(r.name);
      if (!repoCheck.ok) {
        out.invalid.push({ owner: o.name, repo: r.name, rel, reason: repoCheck.reason });
        continue;
      }
      const clone: Clone = { owner: o.name, repo: r.name, key: rel, dir: path.join(ownerDir, r.name) };
      // `.git` is a folder in a clone and a file in a linked worktree; either will do.
      if (await pathExists(path.join(clone.dir, '.git'))) out.clones.push(clone);
      else out.notGit.push(clone);
    }
  }
  const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  out.clones.sort(byKey);
  out.notGit.sort(byKey);
  out.invalid.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return out;
}
