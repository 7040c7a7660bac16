import {
  agentBranchRunId, followUpReference, resolvedTargetOf, runInProgress, runOfPullRequest, runsOnBranch, StepError,
  type FollowUpTarget, type FollowUpVia, type FrontMatter, type ValetConfig,
} from '@prompt-valet/core';
import type { Place } from './resolve.js';

/**
 * A follow-up continues an earlier run's agent branch and pull request
 * instead of starting from the base branch (docs/lifecycle.md,
 * "Follow-ups"). A prompt is one when its branch folder is an agent branch
 * (pv-tree mirrors them: `inbox/<repo>/codex~x-<run id>/`) or its front
 * matter says `follow_up: <run id>` or `follow_up: <PR URL>`. Only branches
 * this valet created qualify: the run must have a folder here that resolved
 * to that branch.
 */
export interface FollowUpResolution {
  /** the base branch of the earlier run: the PR's base */
  base: string;
  agent_branch: string;
  follow_up: FollowUpTarget;
}

export async function resolveFollowUp(place: Place, fm: FrontMatter, thisRun: string, config: ValetConfig): Promise<FollowUpResolution | undefined> {
  const prefix = config.watcher.agent_branch_prefix;
  const folderRun = agentBranchRunId(place.branch, prefix);
  const ref = typeof fm.follow_up === 'string' ? followUpReference(fm.follow_up) : undefined;
  if (!folderRun && !ref) return undefined;

  let named: string;
  let via: FollowUpVia;
  if (ref?.kind === 'pr_url') {
    const found = await runOfPullRequest(config.processed, ref.value);
    if (!found) {
      throw new StepError('follow_up_unknown_pr',
        `follow_up ${ref.value}: no run of this valet opened that pull request, so its branch is not one this valet created; a follow-up by PR URL continues only this valet's own agent branches`);
    }
    [named, via] = [found, 'pr_url'];
  } else if (ref?.kind === 'run_id') {
    [named, via] = [ref.value, 'run_id'];
  } else {
    [named, via] = [folderRun!, 'folder'];
  }

  const earlier = await resolvedTargetOf(config.processed, named);
  if (!earlier) {
    throw new StepError('follow_up_unknown_run', via === 'folder'
      ? `branch ${place.branch} looks like an agent branch of run ${named}, which this valet does not know (no processed/${named}): drop the prompt into the base branch's folder to start new work there`
      : `follow_up ${named}: this valet has no such run (no processed/${named} that resolved a target)`);
  }
  if (via === 'folder' && earlier.agent_branch !== place.branch) {
    throw new StepError('follow_up_unknown_run', `branch ${place.branch} is not the agent branch of run ${named} (${earlier.agent_branch})`);
  }
  if (folderRun && via !== 'folder' && earlier.agent_branch !== place.branch) {
    throw new StepError('follow_up_mismatch',
      `the prompt lies in the folder of agent branch ${place.branch} but its follow_up names work on ${earlier.agent_branch}: drop it in one place or the other`);
  }
  if (earlier.owner !== place.owner || earlier.repo !== place.repo) {
    throw new StepError('follow_up_other_repo',
      `follow_up ${named} is work on ${earlier.owner}/${earlier.repo}, but the prompt lies in the folder of ${place.owner}/${place.repo}: drop it into a folder of ${earlier.owner}/${earlier.repo}`);
  }

  const rootRun = earlier.follow_up?.root_run ?? agentBranchRunId(earlier.agent_branch, prefix) ?? named;
  const runs = (await runsOnBranch(config.processed, earlier.agent_branch, rootRun)).filter((r) => r.run_id < thisRun);
  // One run at a time on a branch: each starts from the branch's head the one before pushed.
  const busy = runs.find((r) => runInProgress(r.status));
  if (busy) {
    throw new StepError('follow_up_busy',
      `run ${busy.run_id} on ${earlier.agent_branch} is still ${busy.status?.state ?? 'running'}; this follow-up waits until it has finished`, { retryable: true });
  }
  const done = runs.filter((r) => r.status?.state === 'done');
  const previous = done[done.length - 1]?.run_id ?? named;
  const prUrl = [...runs].reverse().map((r) => r.status?.pr_url).find((u): u is string => typeof u === 'string' && u !== '');
  const follow_up: FollowUpTarget = { via, of_run: named, root_run: rootRun, previous_run: previous };
  if (prUrl) follow_up.pr_url = prUrl;
  return { base: earlier.branch, agent_branch: earlier.agent_branch, follow_up };
}
