import * as fs from 'node:fs';
import * as path from 'node:path';
import { EX, ToolError } from './exit.js';
import { redactCredentials } from './git.js';

/**
 * The GitHub token, for the steps that talk to the forge only (pv-clone,
 * pv-publish, pv-tree), and only for the one git or gh process that needs
 * it. It is read at the moment of use from
 *
 *   1. `$CREDENTIALS_DIRECTORY/gh_token`: systemd's `LoadCredential=gh_token:…`
 *      (the unit's processes can read it; the agent jail hides /run, where it lives);
 *   2. the file named by PV_FORGE_TOKEN_FILE (for a valet run by hand);
 *   3. GH_TOKEN / GITHUB_TOKEN / GH_ENTERPRISE_TOKEN / GITHUB_ENTERPRISE_TOKEN in
 *      the environment (the old way: every process of the valet then holds it).
 *
 * The watcher and pv-run-codex never call this; the agent's environment
 * drops all of the above (run-codex agent-env.ts).
 */
export const FORGE_CREDENTIAL_NAME = 'gh_token';
export const FORGE_TOKEN_FILE_ENV = 'PV_FORGE_TOKEN_FILE';
export const FORGE_TOKEN_ENV_VARS = ['GH_TOKEN', 'GITHUB_TOKEN', 'GH_ENTERPRISE_TOKEN', 'GITHUB_ENTERPRISE_TOKEN'] as const;

export type ForgeTokenSource = 'credential' | 'file' | 'environment';

export interface ForgeToken {
  token: string;
  source: ForgeTokenSource;
  /** where it came from, for messages (never the token) */
  from: string;
}

/** A token file that exists but cannot be used: one line naming the file and the fix (exit 78: the setup is wrong). */
export class ForgeTokenError extends ToolError {
  constructor(message: string) {
    super('forge_token_unreadable', message, EX.CONFIG);
  }
}

const MAX_TOKEN_BYTES = 4096;

function readTokenFile(file: string): string | undefined {
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(MAX_TOKEN_BYTES + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > MAX_TOKEN_BYTES) throw new ForgeTokenError(`${file} is larger than ${MAX_TOKEN_BYTES} bytes: not a token`);
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if (err instanceof ForgeTokenError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ForgeTokenError(`cannot read the GitHub token file ${file} (${code ?? (err as Error).message}): it must be a regular file readable by the service user`);
  }
  const token = text.trim();
  if (!token) return undefined;
  if (/\s/.test(token)) throw new ForgeTokenError(`${file} holds more than one word: it must hold the token alone`);
  return token;
}

/** The token for forge-facing steps, or undefined when none is configured. Throws ForgeTokenError. */
export function readForgeToken(env: NodeJS.ProcessEnv): ForgeToken | undefined {
  if (env.CREDENTIALS_DIRECTORY) {
    const file = path.join(env.CREDENTIALS_DIRECTORY, FORGE_CREDENTIAL_NAME);
    const token = readTokenFile(file);
    if (token) return { token, source: 'credential', from: file };
  }
  const named = env[FORGE_TOKEN_FILE_ENV];
  if (named) {
    const token = readTokenFile(path.resolve(named));
    if (token) return { token, source: 'file', from: path.resolve(named) };
  }
  for (const name of FORGE_TOKEN_ENV_VARS) {
    const token = env[name];
    if (token) return { token, source: 'environment', from: `$${name}` };
  }
  return undefined;
}

/** The variable gh reads the token from: GH_TOKEN for github.com, GH_ENTERPRISE_TOKEN for other hosts. */
export function ghTokenEnv(token: string, host: string): NodeJS.ProcessEnv {
  return host === 'github.com' || host.endsWith('.ghe.com') ? { GH_TOKEN: token } : { GH_ENTERPRISE_TOKEN: token };
}

/**
 * git gets the token from a credential helper that reads it from its own
 * environment (PV_GIT_FORGE_TOKEN, set for that one git process), answers
 * only for https, and never puts it on a command line (/proc/<pid>/cmdline
 * is world-readable).
 */
export const GIT_FORGE_TOKEN_ENV = 'PV_GIT_FORGE_TOKEN';
const HELPER =
  '!f() { test "$1" = get || exit 0; p=; while read -r l && test -n "$l"; do case "$l" in protocol=*) p=${l#protocol=};; esac; done; ' +
  `test "$p" = https || exit 0; test -n "$${GIT_FORGE_TOKEN_ENV}" || exit 0; echo username=x-access-token; echo "password=$${GIT_FORGE_TOKEN_ENV}"; }; f`;

/** `-c` options that put the helper first (an empty helper entry resets those configured before it). */
export function gitCredentialArgs(): string[] {
  return ['-c', 'credential.helper=', '-c', `credential.helper=${HELPER}`];
}

/**
 * The same helper as environment (GIT_CONFIG_COUNT, git 2.31+), for a
 * process that runs several remote git commands itself (pv-tree's ls-remote
 * workers). Empty when no token is configured. Throws ForgeTokenError.
 */
export function forgeGitEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const forge = readForgeToken(env);
  if (!forge) return {};
  return {
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'credential.helper',
    GIT_CONFIG_VALUE_0: '',
    GIT_CONFIG_KEY_1: 'credential.helper',
    GIT_CONFIG_VALUE_1: HELPER,
    [GIT_FORGE_TOKEN_ENV]: forge.token,
  };
}

/** git subcommands that talk to a remote, and so get the token. */
const REMOTE_SUBCOMMANDS = new Set(['clone', 'fetch', 'pull', 'push', 'ls-remote', 'remote']);

export function gitSubcommand(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '-C' || a === '--git-dir' || a === '--work-tree') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export function gitTalksToRemote(args: readonly string[]): boolean {
  const sub = gitSubcommand(args);
  return sub !== undefined && REMOTE_SUBCOMMANDS.has(sub);
}

/**
 * The GitHub host gh talks to: GH_HOST from the environment, else
 * watcher.gh_host, else watcher.git_default_host (with git_protocol file
 * that is a folder, so gh_host must be set). `ok: false` carries what was
 * found, for the caller's one-line error.
 */
export function ghHostFor(
  env: NodeJS.ProcessEnv,
  watcher: { gh_host: string; git_default_host: string },
): { ok: true; host: string } | { ok: false; found: string } {
  const host = env.GH_HOST || watcher.gh_host || watcher.git_default_host;
  return /^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) ? { ok: true, host } : { ok: false, found: host };
}

/** `text` with credentials in URLs redacted and the forge token variables of `env` replaced by `***`. */
export function scrubSecrets(text: string, env: NodeJS.ProcessEnv): string {
  let out = redactCredentials(text);
  for (const name of FORGE_TOKEN_ENV_VARS) {
    const v = env[name];
    // A value this short would blank ordinary words; tokens are far longer.
    if (v && v.length >= 4) out = out.split(v).join('***');
  }
  return out;
}
