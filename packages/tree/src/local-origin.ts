import * as path from 'node:path';
import { git } from '@prompt-valet/core';
import { attempt, checkOwner, locateGitDir, readRepoConfig, refuse, type Found } from './local-refs.js';

/**
 * Which URL git would ask for a repository's branches, found without a git
 * process per repository, so that a local origin can be read in-process
 * (local-refs.ts). Whatever could make git's effective URL or its view of
 * the origin differ from what these readers see sends every repository
 * concerned to git: an insteadOf rule anywhere, an include, a remote.origin
 * in the user's or system config, hidden refs, an environment variable that
 * moves git's repository or object store.
 */

/**
 * `file:///abs/path` or `/abs/path` → the absolute path; undefined for any
 * other URL (https, ssh, git://, a relative path, `file://host/…`) and for a
 * path git might read differently (percent signs, `?`/`#`, `.` or `..`
 * components, doubled or trailing slashes, whitespace or backslashes).
 */
export function localPathOfUrl(url: string): string | undefined {
  let p: string;
  if (url.startsWith('file://')) p = url.slice('file://'.length);
  else if (url.startsWith('/')) p = url;
  else return undefined;
  if (!p.startsWith('/') || p === '/' || p.endsWith('/')) return undefined;
  if (/[%?#\s\\]/.test(p) || path.posix.normalize(p) !== p) return undefined;
  return p;
}

/** Keys of `[remote "origin"]` that do not change what `ls-remote origin` asks, or whom. */
const HARMLESS_ORIGIN_KEYS = new Set([
  'url', 'fetch', 'pushurl', 'push', 'prune', 'prunetags', 'tagopt', 'mirror', 'skipdefaultupdate', 'skipfetchall',
  'receivepack', 'promisor', 'partialclonefilter',
]);

/**
 * The clone's origin URL from its own `.git/config`: exactly one
 * `remote.origin.url`, and no include, insteadOf or protocol rule there.
 * The clone must be a plain repository of this user, as git requires before
 * it reads that config at all.
 */
export function readCloneOriginUrl(cloneDir: string, uid: number): Found<string> {
  return attempt(cloneDir, () => {
    const where = locateGitDir(cloneDir);
    if (where.workTree === undefined) refuse(`${cloneDir}/.git is not a folder`);
    checkOwner(where, uid);
    const urls: (string | null)[] = [];
    for (const e of readRepoConfig(where.gitDir)) {
      if (e.section === 'url') refuse(`${where.gitDir}/config has url.${e.subsection ?? ''}.${e.key} (insteadOf rules are git's to apply)`);
      if (e.section === 'protocol') refuse(`${where.gitDir}/config sets protocol.${e.subsection ? `${e.subsection}.` : ''}${e.key}`);
      if (e.section !== 'remote' || e.subsection !== 'origin') continue;
      if (!HARMLESS_ORIGIN_KEYS.has(e.key)) refuse(`${where.gitDir}/config sets remote.origin.${e.key}`);
      if (e.key === 'url') urls.push(e.value);
    }
    if (urls.length !== 1) refuse(`${where.gitDir}/config has ${urls.length} remote.origin.url values`);
    const url = urls[0];
    if (url === null || url === undefined || url === '') refuse(`${where.gitDir}/config: remote.origin.url without a value`);
    return url;
  });
}

/**
 * GIT_* variables that leave git's repository, config set, object store and
 * upload-pack as they are. Any other (GIT_DIR, GIT_OBJECT_DIRECTORY,
 * GIT_NAMESPACE, GIT_CONFIG, GIT_EXEC_PATH, GIT_ALLOW_PROTOCOL, …) sends
 * every repository to git.
 */
const HARMLESS_GIT_ENV = /^GIT_(?:TERMINAL_PROMPT|ASKPASS|EDITOR|SEQUENCE_EDITOR|PAGER|SSH|SSH_COMMAND|SSH_VARIANT|CONFIG_COUNT|CONFIG_KEY_\d+|CONFIG_VALUE_\d+|CONFIG_GLOBAL|CONFIG_SYSTEM|CONFIG_NOSYSTEM|TRACE\w*|SSL_\w+|HTTP_\w+|CURL_VERBOSE|AUTHOR_\w+|COMMITTER_\w+|REDACT_COOKIES)$/;

/** Why the environment git runs with rules out reading repositories in-process, or undefined. */
export function environmentRefusal(env: NodeJS.ProcessEnv, uid: number): string | undefined {
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && name.startsWith('GIT_') && !HARMLESS_GIT_ENV.test(name)) return `${name} is set`;
  }
  // As root under sudo, git's ownership check compares with SUDO_UID instead.
  if (uid === 0 && env.SUDO_UID !== undefined) return 'SUDO_UID is set (git checks ownership against it)';
  return undefined;
}

/** Why a config key (as `git config --list --name-only` names it) rules out reading in-process, or undefined. */
export function configKeyRefusal(name: string): string | undefined {
  if (name.startsWith('include.') || name.startsWith('includeif.')) return `${name} (git's config includes other files)`;
  if (name.startsWith('url.') && (name.endsWith('.insteadof') || name.endsWith('.pushinsteadof'))) return `${name} (an insteadOf rule rewrites URLs)`;
  if (name.startsWith('remote.origin.')) return `${name} (origin is configured outside the clone)`;
  if (name === 'uploadpack.hiderefs' || name === 'transfer.hiderefs') return `${name} (hidden refs)`;
  if (name.startsWith('protocol.') && name.endsWith('.allow')) return `${name} (a protocol policy)`;
  if (name === 'safe.barerepository') return `${name}`;
  return undefined;
}

/** How long the one `git config` of a pass may take. */
const CONFIG_CHECK_TIMEOUT_MS = 10_000;

/**
 * The config every git of the pass reads besides the repository's own:
 * system, global and GIT_CONFIG_* from the environment, asked of git once
 * (`git config --list --name-only -z`, which follows includes). Run in
 * `cwd` (repos_root, where the upstream-only ls-remotes run) with the env
 * the ls-remotes get.
 */
export async function sharedConfigRefusal(env: NodeJS.ProcessEnv, cwd: string): Promise<string | undefined> {
  let names: string[];
  try {
    const { stdout } = await git(['config', '--list', '--name-only', '-z'], { cwd, env, timeout: CONFIG_CHECK_TIMEOUT_MS });
    names = stdout.split('\0').filter((n) => n !== '');
  } catch (err) {
    return `git config --list failed: ${(err as Error).message}`;
  }
  for (const name of names) {
    const why = configKeyRefusal(name);
    if (why) return `git config has ${why}`;
  }
  return undefined;
}
