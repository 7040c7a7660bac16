import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  checkTargetRecord, git, GitError, isErrno, prSettings, readJsonIfExists, repoLockPath, runFile, StepError, updateRunStatus,
  withRepoLock, writeFileAtomic, writeJsonAtomic, type Logger, type PublishSection, type PvRecord, type ValetConfig,
} from '@prompt-valet/core';
import { createPr, findOpenPr, ghHostFor, ghRepoArg, TOKEN_VARS } from './gh.js';
import { commitMessage, prBody, prTitle } from './pr-text.js';

/**
 * One record through pv-publish. Order matters for a crash at any point:
 * commit, push, record "pushed" in the run folder, look for an open PR, open
 * one, record the outcome, and only then remove the run's worktree. A rerun
 * redoes whatever did not finish and never opens a second PR.
 */
export interface PublishContext {
  config: ValetConfig;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/** git never sees the GitHub token. */
function gitEnvWithoutTokens(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of TOKEN_VARS) env[name] = undefined;
  return env;
}

async function g(args: string[], cwd: string) {
  return (await git(args, { cwd, env: gitEnvWithoutTokens() })).stdout.trim();
}

async function dirExists(dir: string): Promise<boolean> {
  try {
    return (await fsp.stat(dir)).isDirectory();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/** Paths changed in the worktree (porcelain -z), the agent's own run file excepted. */
async function changedPaths(dir: string, ownFile: string | undefined): Promise<string[]> {
  const out = (await git(['status', '--porcelain=v1', '-z', '--untracked-files=all'], { cwd: dir })).stdout;
  const entries = out.split('\0').filter(Boolean);
  const paths: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    paths.push(e.slice(3));
    if (e[0] === 'R' || e[0] === 'C') i++; // the next entry is the rename's source
  }
  return paths.filter((p) => p !== ownFile);
}

export async function publishRun(rec: PvRecord, ctx: PublishContext): Promise<PvRecord> {
  const started = Date.now();
  const { config, env, log } = ctx;
  const w = config.watcher;
  const { runId, target: t, runRoot } = checkTargetRecord(rec, config.repos_root);
  const dir = rec.checkout?.dir;
  if (typeof dir !== 'string' || !path.isAbsolute(dir)) throw new StepError('missing_checkout', 'record has no checkout.dir (run pv-clone first)');
  const ownFile = w.agent_runs_dir ? path.posix.join(w.agent_runs_dir, `codex-run-${runId}.md`) : undefined;
  const previous = await readJsonIfExists<PublishSection>(runFile(runRoot, 'publish'));
  const title = await prTitle(rec);
  const body = await prBody(rec);
  const bodyFile = runFile(runRoot, 'prBody');
  await writeFileAtomic(bodyFile, body);

  let commit: string;
  if (await dirExists(dir)) {
    const top = await g(['rev-parse', '--show-toplevel'], dir).catch(() => '');
    if (!top || (await fsp.realpath(top)) !== (await fsp.realpath(dir))) {
      throw new StepError('not_a_git_repo', `checkout ${dir} is not a git worktree`);
    }
    const changed = await changedPaths(dir, ownFile);
    const headSha = await g(['rev-parse', 'HEAD'], dir);
    const baseSha = rec.checkout?.base_sha;
    if (changed.length === 0 && headSha === baseSha) {
      const section: PublishSection = { outcome: 'no_changes', branch: t.agent_branch, title };
      await writeJsonAtomic(runFile(runRoot, 'publish'), { ...section, run_id: runId, at: new Date().toISOString() });
      await removeCheckout(rec, dir, config.repos_root, log);
      log.info(`run ${runId}: the agent changed nothing; no branch pushed, no PR`);
      await updateRunStatus(runRoot, { state: 'published', step: 'publish', outcome: 'no_changes', durations_ms: { publish: Date.now() - started } });
      return { ...rec, publish: section };
    }
    const current = await g(['symbolic-ref', '--quiet', 'HEAD'], dir).catch(() => '');
    if (current !== `refs/heads/${t.agent_branch}`) {
      // The agent left its branch: bring the work back onto the agent branch.
      await g(['checkout', '--quiet', '-B', t.agent_branch], dir);
    }
    if (changed.length > 0) {
      await g(['add', '--all'], dir);
      await git(['-c', 'commit.gpgsign=false', 'commit', '--quiet', '--no-verify', '-F', '-'], {
        cwd: dir,
        input: commitMessage(rec, title),
        env: {
          ...gitEnvWithoutTokens(),
          GIT_AUTHOR_NAME: w.commit_author_name, GIT_AUTHOR_EMAIL: w.commit_author_email,
          GIT_COMMITTER_NAME: w.commit_author_name, GIT_COMMITTER_EMAIL: w.commit_author_email,
        },
      });
    }
    commit = await g(['rev-parse', 'HEAD'], dir);
    await pushAgentBranch(dir, t.agent_branch, commit);
  } else if (previous?.commit && (previous.outcome === 'pushed' || previous.outcome === 'pr_opened' || previous.outcome === 'pr_exists')) {
    // A rerun after the checkout was already removed: the work is upstream.
    commit = previous.commit;
    log.info(`run ${runId}: checkout already removed; ${t.agent_branch} was pushed at ${commit}`);
  } else {
    throw new StepError('checkout_missing', `checkout ${dir} does not exist and nothing was pushed for run ${runId}`);
  }

  const pushed: PublishSection = { outcome: 'pushed', commit, branch: t.agent_branch, title };
  await writeJsonAtomic(runFile(runRoot, 'publish'), { ...pushed, run_id: runId, at: new Date().toISOString() });

  let section = pushed;
  if (w.publisher === 'gh') {
    const host = ghHostFor(env, w.gh_host, w.git_default_host);
    const repoArg = ghRepoArg(host, t.owner, t.repo);
    const ghOpts = { cmd: w.gh_cmd, host, env, cwd: runRoot };
    const existing = await findOpenPr(ghOpts, repoArg, t.agent_branch);
    if (existing) {
      section = { ...pushed, outcome: 'pr_exists', pr_url: existing };
      log.info(`run ${runId}: an open PR for ${t.agent_branch} already exists: ${existing}`);
    } else {
      // Re-checked against the operator's limits: a forged record widens nothing.
      const { draft, labels } = prSettings(t.front_matter, w);
      const url = await createPr(ghOpts, repoArg, { base: t.branch, head: t.agent_branch, title, bodyFile, draft, labels });
      section = { ...pushed, outcome: 'pr_opened', pr_url: url };
      log.info(`run ${runId}: opened ${url}`);
    }
    await writeJsonAtomic(runFile(runRoot, 'publish'), { ...section, run_id: runId, at: new Date().toISOString() });
  } else {
    log.info(`run ${runId}: pushed ${t.agent_branch} (publisher none: PR text in ${bodyFile})`);
  }

  if (await dirExists(dir)) await removeCheckout(rec, dir, config.repos_root, log);
  await updateRunStatus(runRoot, {
    state: 'published', step: 'publish', outcome: section.outcome,
    ...(section.pr_url ? { pr_url: section.pr_url } : {}),
    durations_ms: { publish: Date.now() - started },
  });
  return { ...rec, publish: section };
}

/**
 * Push with a lease on what this clone last saw of the agent branch: an
 * earlier attempt's push of the same branch (ours) is replaced, anything
 * else someone pushed there meanwhile makes the push fail, never lost.
 */
async function pushAgentBranch(dir: string, branch: string, commit: string): Promise<void> {
  const ref = `refs/heads/${branch}`;
  const seen = await g(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}`], dir).catch(() => '');
  try {
    await git(['push', '--quiet', `--force-with-lease=${ref}:${seen}`, 'origin', `${commit}:${ref}`], {
      cwd: dir, env: gitEnvWithoutTokens(),
    });
  } catch (err) {
    if (err instanceof GitError && /\[rejected\]|\[remote rejected\]|stale info|non-fast-forward|fetch first|pre-receive hook declined/i.test(`${err.stderr}\n${err.message}`)) {
      throw new StepError('push_rejected',
        `origin rejected the push of ${branch}; the commit ${commit.slice(0, 12)} is kept on the local branch: ${err.message}`,
        { retryable: true, detail: err.stderr });
    }
    throw err;
  }
  // The lease of the next push compares with what we pushed now.
  await g(['update-ref', `refs/remotes/origin/${branch}`, commit], dir).catch(() => '');
}

/**
 * Remove the run's worktree (under the repository lock, as pv-clone adds
 * them). With no changes the local agent branch goes too; after a push the
 * branch lives on origin, so the local one is deleted as well.
 */
async function removeCheckout(rec: PvRecord, dir: string, reposRoot: string, log: Logger): Promise<void> {
  const t = rec.target!;
  try {
    await withRepoLock(repoLockPath(reposRoot, t.owner, t.repo), async () => {
      await g(['worktree', 'remove', '--force', dir], t.repo_dir);
      await g(['update-ref', '-d', `refs/heads/${t.agent_branch}`], t.repo_dir);
    });
  } catch (err) {
    // The work is safe (pushed, or there was none); a leftover folder is tidied by the next pv-clone.
    log.warn(`could not remove the checkout ${dir}: ${(err as Error).message}`);
  }
}
