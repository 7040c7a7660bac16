import { checkTargetRecord, repoLockPath, updateRunStatus, withRepoLock, type CheckoutSection, type Logger, type PvRecord, type ValetConfig } from '@prompt-valet/core';
import { ensureClone, syncClone } from './clone-repo.js';
import { addRunWorktree } from './run-worktree.js';

/** One record through pv-clone: the shared clone synced, the run's own checkout made. */
export async function cloneForRun(rec: PvRecord, config: ValetConfig, log: Logger): Promise<PvRecord> {
  const started = Date.now();
  const reposRoot = config.repos_root;
  const { runId, target: t, runRoot } = checkTargetRecord(rec, reposRoot);
  const opts = { reposRoot, autoClone: config.watcher.auto_clone_missing_repos, cleanup: config.watcher.cleanup_non_git_dirs, log };

  const checkout = await withRepoLock(repoLockPath(reposRoot, t.owner, t.repo), async (): Promise<CheckoutSection> => {
    const state = await ensureClone(t, opts);
    const baseSha = await syncClone(t, opts, state);
    const wt = await addRunWorktree(t, runId, baseSha, reposRoot, log);
    const section: CheckoutSection = { dir: wt.dir, base_sha: baseSha, branch: t.agent_branch, repo: state.action, reused_branch: wt.reused_branch };
    if (state.moved_to) section.moved_to = state.moved_to;
    if (state.stashed) section.stashed = state.stashed;
    if (wt.moved_aside.length > 0) section.moved_aside = wt.moved_aside;
    return section;
  });
  log.info(`${t.owner}/${t.repo}: run ${runId} checks out ${t.agent_branch} from origin/${t.branch} (${checkout.base_sha.slice(0, 12)}) in ${checkout.dir}`);
  await updateRunStatus(runRoot, {
    state: 'cloned', step: 'clone', owner: t.owner, repo: t.repo, branch: t.branch, agent_branch: t.agent_branch,
    durations_ms: { clone: Date.now() - started },
  });
  return { ...rec, checkout };
}
