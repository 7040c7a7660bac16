import { FORGE_TOKEN_ENV_VARS, ForgeTokenError, ghHostFor, ghTokenEnv, readForgeToken, runProgram, scrubSecrets, StepError } from '@prompt-valet/core';

/**
 * Talking to GitHub through the real `gh`. The token reaches gh only
 * through gh's own environment, for that one command: read at the moment of
 * use from systemd's credential (`$CREDENTIALS_DIRECTORY/gh_token`), the
 * PV_FORGE_TOKEN_FILE file, or (the old way) GH_TOKEN & co. inherited from
 * pv-publish (core forge-token.ts). It is scrubbed from anything gh prints
 * before that reaches a log or a record.
 */
export const TOKEN_VARS = FORGE_TOKEN_ENV_VARS;

export interface GhOptions {
  cmd: string;
  /** `github.com`, `ghe.example.com` or `127.0.0.1:8443` */
  host: string;
  env: NodeJS.ProcessEnv;
  /** gh runs here: not a git checkout, so gh never reads a repository's state */
  cwd: string;
}

/** `--repo` for gh: `owner/repo` on github.com, `HOST/owner/repo` elsewhere (gh cannot match a host with a port to remotes). */
export function ghRepoArg(host: string, owner: string, repo: string): string {
  return host === 'github.com' ? `${owner}/${repo}` : `${host}/${owner}/${repo}`;
}

/** The host gh opens the PR on (core ghHostFor), or a StepError naming the keys to set. */
export function ghHostForPr(env: NodeJS.ProcessEnv, watcher: { gh_host: string; git_default_host: string }): string {
  const found = ghHostFor(env, watcher);
  if (!found.ok) {
    throw new StepError('gh_host_unknown',
      `cannot tell which GitHub host to open the PR on (${JSON.stringify(found.found)} is not a host name): set watcher.gh_host or GH_HOST`);
  }
  return found.host;
}

/** The token for this gh command, from the credential or file when the environment has none. */
function ghTokenFor(opts: GhOptions): NodeJS.ProcessEnv {
  if (TOKEN_VARS.some((name) => opts.env[name])) return {};
  try {
    const forge = readForgeToken(opts.env);
    return forge ? ghTokenEnv(forge.token, opts.host) : {};
  } catch (err) {
    if (err instanceof ForgeTokenError) throw new StepError(err.code, err.message);
    throw err;
  }
}

/** Most bytes kept of what gh prints (a PR's comments as JSON stay far below). */
const MAX_GH_OUTPUT = 64 * 1024 * 1024;

/** Run gh with the token for this one command; a failure is a retryable `gh_failed` naming gh's first line. */
export async function runGh(opts: GhOptions, args: string[]): Promise<string> {
  const token = ghTokenFor(opts);
  const result = await runProgram(opts.cmd, args, {
    cwd: opts.cwd,
    env: { ...opts.env, ...token, GH_PROMPT_DISABLED: '1', GH_NO_UPDATE_NOTIFIER: '1', NO_COLOR: '1', GH_PAGER: 'cat', ...(opts.host === 'github.com' ? {} : { GH_HOST: opts.host }) },
    timeout: 120_000,
    maxOutput: MAX_GH_OUTPUT,
  });
  if (result.spawnError?.code === 'ENOENT') {
    throw new StepError('gh_missing', `${opts.cmd} is not installed (not found on PATH): install gh or set watcher.publisher: none`);
  }
  if (result.spawnError || result.overflow || result.timedOut || result.exitCode !== 0) {
    const stderr = scrubSecrets(result.stderr.trim(), { ...opts.env, ...token });
    const first = result.spawnError
      ? `cannot start ${opts.cmd}: ${result.spawnError.message}`
      : result.overflow
        ? `printed more than ${MAX_GH_OUTPUT} bytes on ${result.overflow}; stopped it`
        : stderr.split('\n').find((l) => l.trim()) ?? (result.timedOut ? 'timed out' : `exit ${result.exitCode ?? result.signal}`);
    // gh failing is a network, rate limit or GitHub outage far more often
    // than a permanent fault; another attempt costs little.
    throw new StepError('gh_failed', `gh ${args[0]} ${args[1]}: ${first}`, { retryable: true, detail: stderr });
  }
  return result.stdout;
}

/** The URL of an open PR from `head`, if there is one. */
export async function findOpenPr(opts: GhOptions, repoArg: string, head: string): Promise<string | undefined> {
  const out = await runGh(opts, ['pr', 'list', `--repo=${repoArg}`, `--head=${head}`, '--state=open', '--json=url', '--limit=1']);
  const list = JSON.parse(out || '[]') as { url?: string }[];
  return list[0]?.url;
}

export interface PrSpec {
  base: string;
  head: string;
  title: string;
  bodyFile: string;
  draft: boolean;
  labels: string[];
}

/** Open the PR; returns its URL. `--opt=value` so no value is ever read as an option. */
export async function createPr(opts: GhOptions, repoArg: string, pr: PrSpec): Promise<string> {
  const args = ['pr', 'create', `--repo=${repoArg}`, `--base=${pr.base}`, `--head=${pr.head}`, `--title=${pr.title}`, `--body-file=${pr.bodyFile}`];
  if (pr.draft) args.push('--draft');
  for (const label of pr.labels) args.push(`--label=${label}`);
  const out = await runGh(opts, args);
  const url = out.split('\n').map((l) => l.trim()).reverse().find((l) => /^https?:\/\//.test(l));
  if (!url) throw new StepError('gh_failed', `gh pr create printed no PR URL: ${scrubSecrets(out.trim().slice(0, 200), opts.env)}`, { retryable: true });
  return url;
}

/**
 * Open the PR unless one from `head` is open already (a retry after a crash
 * between the PR and publish.json). `gh pr create` looks for an open PR of
 * the branch itself and refuses a duplicate, so the usual run takes one gh
 * process, not a lookup besides; when it fails, the lookup tells an open PR
 * from a real failure without reading gh's message.
 */
export async function openPrOnce(opts: GhOptions, repoArg: string, pr: PrSpec): Promise<{ url: string; existed: boolean }> {
  try {
    return { url: await createPr(opts, repoArg, pr), existed: false };
  } catch (err) {
    if (!(err instanceof StepError) || err.code !== 'gh_failed') throw err;
    const existing = await findOpenPr(opts, repoArg, pr.head);
    if (existing) return { url: existing, existed: true };
    throw err;
  }
}
