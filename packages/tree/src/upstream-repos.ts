import { execa } from 'execa';
import { checkRepoName, ghHostFor, scrubSecrets, type ValetConfig } from '@prompt-valet/core';

/**
 * tree_builder.greedy_inboxes: the owner's repositories as GitHub lists
 * them, so a repository gets its inbox folders before anything clones it.
 * Asked of the real `gh` (`gh repo list OWNER --json name,isArchived`,
 * which pages through GitHub's GraphQL API itself); archived repositories
 * are skipped (no prompt can be published to them).
 */
export type OwnerListing =
  | { ok: true; owner: string; repos: string[]; skipped: { name: string; reason: string }[] }
  | { ok: false; owner: string; reason: string };

/** More repositories than this for one owner are not listed (gh pages 100 at a time). */
export const MAX_UPSTREAM_REPOS = 5000;
const GH_TIMEOUT_MS = 120_000;

/**
 * The GitHub host gh asks: GH_HOST from the environment, else
 * watcher.gh_host, else watcher.git_default_host (the same order as
 * pv-publish). With git_protocol file the default host is a folder, so
 * gh_host must be set.
 */
export function ghHostOf(config: ValetConfig, env: NodeJS.ProcessEnv): { ok: true; host: string } | { ok: false; reason: string } {
  const found = ghHostFor(env, config.watcher);
  if (found.ok) return found;
  return { ok: false, reason: `cannot tell which GitHub host lists the repositories (${JSON.stringify(found.found)} is not a host name): set watcher.gh_host or GH_HOST` };
}

/**
 * The one place pv-tree runs gh. The token reaches gh the way pv-publish
 * passes it today: inherited from pv-tree's environment. (When the token
 * moves to a systemd credential read by core, this is the call to switch.)
 */
async function runGh(config: ValetConfig, host: string, args: string[], env: NodeJS.ProcessEnv) {
  return execa(config.watcher.gh_cmd, args, {
    cwd: '/',
    env: { ...env, GH_PROMPT_DISABLED: '1', GH_NO_UPDATE_NOTIFIER: '1', NO_COLOR: '1', GH_PAGER: 'cat', ...(host === 'github.com' ? {} : { GH_HOST: host }) },
    extendEnv: false,
    reject: false,
    timeout: GH_TIMEOUT_MS,
    stdin: 'ignore',
  });
}

export function parseRepoList(owner: string, stdout: string): OwnerListing {
  let value: unknown;
  try {
    value = JSON.parse(stdout || '[]');
  } catch {
    return { ok: false, owner, reason: `gh repo list ${owner}: the answer is not JSON` };
  }
  if (!Array.isArray(value)) return { ok: false, owner, reason: `gh repo list ${owner}: the answer is not a list` };
  const repos: string[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const item of value as unknown[]) {
    const entry = typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : {};
    const name = entry.name;
    if (typeof name !== 'string') return { ok: false, owner, reason: `gh repo list ${owner}: an entry without a name` };
    if (entry.isArchived === true) continue;
    const check = checkRepoName(name);
    // As for clones: a dot-name (`.github`) would be a hidden inbox folder, which nothing claims from.
    if (name.startsWith('.')) skipped.push({ name, reason: 'its inbox folder would be hidden (a dot-name), and prompts in hidden folders are never claimed' });
    else if (!check.ok) skipped.push({ name, reason: check.reason });
    else repos.push(name);
  }
  repos.sort();
  return { ok: true, owner, repos, skipped };
}

export async function listUpstreamRepos(config: ValetConfig, owner: string, env: NodeJS.ProcessEnv = process.env): Promise<OwnerListing> {
  const host = ghHostOf(config, env);
  if (!host.ok) return { ok: false, owner, reason: host.reason };
  const args = ['repo', 'list', owner, '--json', 'name,isArchived', '--limit', String(MAX_UPSTREAM_REPOS)];
  const result = await runGh(config, host.host, args, env);
  if (result.failed) {
    const cause = result.cause as NodeJS.ErrnoException | undefined;
    if (result.exitCode === undefined && cause?.code === 'ENOENT') {
      return { ok: false, owner, reason: `${config.watcher.gh_cmd} is not installed (not found on PATH): install gh or set tree_builder.greedy_inboxes: false` };
    }
    const stderr = scrubSecrets(String(result.stderr ?? '').trim(), env);
    const first = stderr.split('\n').find((l) => l.trim()) ?? (result.timedOut ? `no answer within ${GH_TIMEOUT_MS / 1000} s` : `exit ${result.exitCode}`);
    return { ok: false, owner, reason: `gh repo list ${owner}: ${first}` };
  }
  return parseRepoList(owner, String(result.stdout ?? ''));
}
