import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Where things go. Every path the installer talks about is a *system* path
 * (what the installed services see, e.g. /srv/prompt-valet/inbox); `disk()`
 * turns it into the path on this machine's disk, which differs only when
 * installing into a staging root (`--root DIR`, `make install DESTDIR=…`).
 */
export const LAYOUT_DIRS = ['inbox', 'processed', 'finished', 'config', 'scripts', 'logs', 'repos'] as const;
/** Folders that hold the operator's prompts and results: never removed. */
export const OPERATOR_DIRS = ['inbox', 'processed', 'finished', 'repos'] as const;
/** The path older installs and scripts use for the clones. */
export const LEGACY_REPOS = '/srv/repos';
/** systemd's LoadCredential= source for the GitHub token, under the prefix (see units/codex-watcher.service). */
export const GH_TOKEN_CREDENTIAL = ['config', 'credentials', 'gh_token'] as const;
export const UNIT_DIR = '/etc/systemd/system';
/** Marks a file as pv-install's own: it may be replaced or removed by pv-install. */
export const OWN_MARKER = 'Installed by pv-install';

export interface Layout {
  /** '/' for the live system, else a staging root */
  root: string;
  /** system path of the valet's home, /srv/prompt-valet by default */
  prefix: string;
  /** true when installing onto the running system (user, chown, systemctl) */
  live: boolean;
  configFile: string;
  scripts: string;
  lib: string;
  disk(systemPath: string): string;
}

export function makeLayout(root: string, prefix: string): Layout {
  const absRoot = path.resolve(root);
  const absPrefix = path.posix.resolve('/', prefix);
  return {
    root: absRoot,
    prefix: absPrefix,
    live: absRoot === '/',
    configFile: path.posix.join(absPrefix, 'config', 'prompt-valet.yaml'),
    scripts: path.posix.join(absPrefix, 'scripts'),
    lib: path.posix.join(absPrefix, 'scripts', 'lib'),
    disk: (p) => (absRoot === '/' ? p : path.join(absRoot, p)),
  };
}

/**
 * The disk path a system path names inside the root, following symlinks the
 * way the installed system would (an absolute link target is read inside the
 * root), e.g. /srv/repos -> /srv/prompt-valet/repos in a staging root.
 */
export function resolveInRoot(layout: Layout, systemPath: string): string {
  const parts = systemPath.split('/').filter(Boolean);
  let cur = '/';
  for (let hops = 0, i = 0; i < parts.length; i++) {
    const next = path.posix.join(cur, parts[i]!);
    let target: string | undefined;
    try {
      target = fs.readlinkSync(layout.disk(next));
    } catch {
      target = undefined;
    }
    if (target === undefined) {
      cur = next;
      continue;
    }
    if (++hops > 40) throw new Error(`too many symlinks under ${systemPath}`);
    const resolved = path.posix.resolve(cur, target);
    parts.splice(0, i + 1, ...resolved.split('/').filter(Boolean));
    cur = '/';
    i = -1;
  }
  return layout.disk(cur);
}
