import {
  agentStepDone, checkedFollowUp, checkoutOfRecord, checkTargetRecord, git, GitError, markStepDone, pathExists, readStepDone, repoLockPath, runOfRecord,
  updateRunStatus, withRepoLock, type CheckoutSection, type Logger, type PvRecord, type ValetConfig,
} from '@prompt-valet/core';
import { ensureClone, syncClone } from './clone-repo.js';
import { addRunWorktree } from './run-worktree.js';
import { followUpStart } from './follow-up-base.js';

/**
 * One record through pv-clone: the shared clone synced, the run's own
 * checkout made. On resume (docs/lifecycle.md) the checkout of a run whose
 * agent finished is reused as it is, since it holds the work to publish;
 * otherwise the old checkout is set aside and a fresh one made at the base
 * recorded the first time, so every try of a run starts from the same commit.
 * A follow-up (target.follow_up) starts from the agent branch's head upstream.
 */
export async function cloneForRun(rec: PvRecord, config: ValetConfig, log: Logger): Promise<PvRecord> {
  const started = Date.now();
  const reposRoot = config.repos_root;
  const { target: t } = checkTargetRecord(rec, reposRoot);
  const { runId, runRoot } = runOfRecord(rec, config);
  const dir = checkoutOfRecord(rec, config, runId);
  const opts = { reposRoot, autoClone: config.watcher.auto_clone_missing_repos, cleanup: config.watcher.cleanup_non_git_dirs, log };

  await checkedFollowUp(runRoot, t);
  const recorded = await readStepDone<CheckoutSection>(runRoot, 'clone');
  if (recorded && (await agentStepDone(runRoot))) {
    // The agent's work is in this checkout (or, once pushed, upstream): never touch it.
    log.info(`${runId}: the agent step completed earlier; reusing the checkout ${dir}`);
    return { ...rec, checkout: { ...recorded, reused_checkout: await pathExists(dir) } };
  }

  const checkout = await withRepoLock(repoLockPath(reposRoot, t.owner, t.repo), async (): Promise<CheckoutSection> => {
    const state = await ensureClone(t, opts);
    const refs = await syncClone(t, opts, state);
    const fetchedBase = t.follow_up ? followUpStart(t, refs) : refs.baseSha;
    const baseSha = recorded && (await hasCommit(t.repo_dir, recorded.base_sha)) ? recorded.base_sha : fetchedBase;
    const wt = await addRunWorktree(t, runId, baseSha, reposRoot, log, refs.localAgentSha);
    const section: CheckoutSection = { dir: wt.dir, base_sha: baseSha, branch: t.agent_branch, repo: state.action, reused_branch: wt.reused_branch };
    if (state.moved_to) section.moved_to = state.moved_to;
    if (state.stashed) section.stashed = state.stashed;
    if (wt.moved_aside.length > 0) section.moved_aside = wt.moved_aside;
    return section;
  });
  log.info(`${t.owner}/${t.repo}: run ${runId} checks out ${t.agent_branch} from ${checkout.base_sha.slice(0, 12)} in ${checkout.dir}`);
  await updateRunStatus(runRoot, {
    state: 'cloned', step: 'clone', owner: t.owner, repo: t.repo, branch: t.branch, agent_branch: t.agent_branch,
    durations_ms: { clone: Date.now() - started },
  });
  await markStepDone(runRoot, 'clone', checkout);
  return { ...rec, checkout };
}

/** A recorded base commit is reused only while the clone still has it (a replaced clone may not). */
async function hasCommit(repoDir: string, sha: unknown): Promise<boolean> {
  if (typeof sha !== 'string' || !/^[0-9a-f]{40,64}$/.test(sha)) return false;
  try {
    await git(['cat-file', '-e', `${sha}^{commit}`], { cwd: repoDir });
    return true;
  } catch (err) {
    if (err instanceof GitError) return false;
    throw err;
  }
}
