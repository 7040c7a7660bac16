import { StepError, type TargetSection } from '@prompt-valet/core';
import type { CloneRefs } from './clone-repo.js';

/**
 * A follow-up's checkout starts from the head of the agent branch upstream
 * (the earlier run's pushed work), not from the base branch. The clone was
 * just fetched (pruned), so a branch deleted upstream (the PR merged and its
 * branch removed) is gone here too: the follow-up then has nothing to go on.
 */
export function followUpStart(t: TargetSection, refs: CloneRefs): string {
  if (refs.remoteAgentSha) return refs.remoteAgentSha;
  throw new StepError('follow_up_branch_gone',
    `the agent branch ${t.agent_branch} of run ${t.follow_up?.of_run ?? '?'} no longer exists in ${t.clone_url} (merged and deleted?): drop the prompt into the ${t.branch} folder to start new work`);
}
