import { git, GitError, StepError, type TargetSection } from '@prompt-valet/core';

/**
 * A follow-up's checkout starts from the head of the agent branch upstream
 * (the earlier run's pushed work), not from the base branch. The clone was
 * just fetched (pruned), so a branch deleted upstream (the PR merged and its
 * branch removed) is gone here too: the follow-up then has nothing to go on.
 */
export async function followUpStart(t: TargetSection): Promise<string> {
  const ref = `refs/remotes/origin/${t.agent_branch}`;
  try {
    return (await git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { cwd: t.repo_dir })).stdout.trim();
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    throw new StepError('follow_up_branch_gone',
      `the agent branch ${t.agent_branch} of run ${t.follow_up?.of_run ?? '?'} no longer exists in ${t.clone_url} (merged and deleted?): drop the prompt into the ${t.branch} folder to start new work`);
  }
}
