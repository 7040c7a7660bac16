import * as path from 'node:path';
import {
  agentBranchRunId, FrontMatterError, parsePrompt, readRunStatusOrNone, runsOnBranch, runView, splitPrompt,
  type RunStatus, type ValetConfig,
} from '@prompt-valet/core';
import { HttpError } from './http-error.js';
import { apiRun, runRoot, type ApiRun } from './runs.js';
import { submitPrompt, type Submitted } from './submit.js';
import { listTargets } from './targets.js';

/**
 * Follow-ups in pv-web: the runs that continued a run's work (same agent
 * branch, later run ids) are listed under it, and a run whose branch was
 * pushed gets a "Follow up" form. A follow-up is submitted as any prompt is
 * (submit.ts), into the run's base branch folder, with `follow_up: <run id>`
 * in its front matter: pv-resolve does the rest, exactly as for a prompt
 * dropped by hand.
 */
const PUSHED_OUTCOMES = new Set(['pr_opened', 'pr_exists', 'pr_commented', 'pushed']);

/** The runs after `status`'s run on its agent branch, oldest first. */
export async function followUpsOf(config: ValetConfig, status: RunStatus): Promise<ApiRun[]> {
  if (!status.agent_branch) return [];
  const root = agentBranchRunId(status.agent_branch, config.watcher.agent_branch_prefix) ?? status.run_id;
  const runs = await runsOnBranch(config.processed, status.agent_branch, root);
  const now = Date.now();
  return runs.filter((r) => r.run_id > status.run_id && r.status)
    .map((r) => apiRun(runView(r.status!, path.join(config.processed, r.run_id), now), config));
}

/** The prompt text with `follow_up: <run id>` in its front matter; a different follow_up given is refused. */
export function withFollowUp(text: string, runId: string): string {
  const { yaml, body } = splitPrompt(text);
  let given: unknown;
  try {
    given = parsePrompt(text).front_matter.follow_up;
  } catch (err) {
    if (err instanceof FrontMatterError) throw new HttpError(400, err.code, err.message, err);
    throw err;
  }
  if (given !== undefined && given !== runId) {
    throw new HttpError(400, 'follow_up_conflict', `the prompt's front matter says follow_up: ${String(given)}, not this run (${runId})`);
  }
  if (given === runId) return text;
  return yaml === undefined || yaml.trim() === ''
    ? `---\nfollow_up: ${runId}\n---\n${body}`
    : `---\nfollow_up: ${runId}\n${yaml}\n---\n${body}`;
}

export async function submitFollowUp(config: ValetConfig, runId: string, sub: { name: string; text: string }): Promise<Submitted> {
  const status = await readRunStatusOrNone(await runRoot(config, runId));
  if (!status) throw new HttpError(404, 'no_such_run', `no status for run ${runId}`);
  if (status.state !== 'done' || !status.agent_branch || !PUSHED_OUTCOMES.has(status.outcome ?? '')) {
    throw new HttpError(409, 'not_followable',
      `run ${runId} is ${status.state}${status.outcome ? ` (${status.outcome})` : ''}: only a run that pushed its branch can be followed up`);
  }
  const target = (await listTargets(config)).find((t) => t.owner === status.owner && t.repo === status.repo && t.branch === status.branch);
  if (!target) {
    throw new HttpError(409, 'no_target', `the inbox has no folder for ${status.owner}/${status.repo} @ ${status.branch} (run pv-tree)`);
  }
  return submitPrompt(config, target, { name: sub.name, bytes: Buffer.from(withFollowUp(sub.text, runId), 'utf8') });
}
