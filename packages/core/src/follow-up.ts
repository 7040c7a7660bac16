import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { expectErrno } from './files.js';
import { listRunIds } from './queue-view.js';
import { LEDGER_DIR } from './prompt-ledger.js';
import { readRunStatusOrNone, type RunStatus } from './run-folder.js';
import { runRootFor } from './run-paths.js';
import { isRunId } from './runid.js';
import { readStepDone } from './run-steps.js';
import { StepError, type TargetSection } from './records.js';

/**
 * Follow-ups (docs/lifecycle.md, "Follow-ups"): a prompt that continues an
 * earlier run's work on the same agent branch and pull request. The runs of
 * one agent branch are found from the run folders themselves: each run's
 * `steps/resolve.json` holds its target, so "this valet created the branch"
 * means "a run folder here resolved to it". pv-resolve also lists each
 * follow-up under the branch's first run in the ledger
 * (`processed/.ledger/follow-ups/<root run id>/<run id>`, an empty file), so
 * finding a branch's runs reads those folders only, not every run's
 * (measured: 1.5 s to read 5,000 run folders).
 */

/** How a prompt asked to continue earlier work. */
export type FollowUpVia = 'folder' | 'run_id' | 'pr_url';

/** `target.follow_up`: what a follow-up continues. Set by pv-resolve. */
export interface FollowUpTarget {
  /** how the prompt asked: dropped into the agent branch's folder, or front matter `follow_up` */
  via: FollowUpVia;
  /** the run the prompt named (by run id, PR URL, or the agent branch's first run for a folder) */
  of_run: string;
  /** the run that made the agent branch */
  root_run: string;
  /** the newest earlier run on the branch: its codex session is the one resumed */
  previous_run: string;
  /** the pull request, when a run of the branch opened or found one */
  pr_url?: string;
}

/** A run of an agent branch, as its run folder tells it. */
export interface BranchRun {
  run_id: string;
  target: TargetSection;
  status: RunStatus | undefined;
}

/** `follow_up` in front matter: a run id, or the URL of a pull request (`…/pull/<n>`). */
export function followUpReference(value: string): { kind: 'run_id' | 'pr_url'; value: string } | undefined {
  const v = value.trim();
  if (isRunId(v)) return { kind: 'run_id', value: v };
  if (/^https?:\/\/[^\s/]+\/[^\s/]+\/[^\s/]+\/pull\/\d+\/?$/.test(v)) return { kind: 'pr_url', value: v.replace(/\/$/, '') };
  return undefined;
}

/**
 * The run id an agent branch was named after (`<prefix><slug>-<run id>`,
 * pv-resolve), or undefined when `branch` is not an agent branch.
 */
export function agentBranchRunId(branch: string, prefix: string): string | undefined {
  if (prefix === '' || !branch.startsWith(prefix)) return undefined;
  const m = /-(\d{8}-\d{6}-\d{3}-[0-9a-z]{8})$/.exec(branch);
  return m && isRunId(m[1]!) ? m[1] : undefined;
}

/** The target a run resolved to (its `steps/resolve.json`), or undefined for an unknown or unresolved run. */
export async function resolvedTargetOf(processed: string, runId: string): Promise<TargetSection | undefined> {
  if (!isRunId(runId)) return undefined;
  const root = runRootFor({ processed }, runId);
  try {
    if (!(await fsp.lstat(root)).isDirectory()) return undefined;
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return undefined;
  }
  return readStepDone<TargetSection>(root, 'resolve');
}

/** `processed/.ledger/follow-ups/<root run id>/`: the follow-ups of one agent branch. */
export function followUpIndexDir(processed: string, rootRun: string): string {
  if (!isRunId(rootRun)) throw new StepError('bad_run_id', `run_id ${JSON.stringify(rootRun)} is not a run id`);
  return path.join(path.resolve(processed), LEDGER_DIR, 'follow-ups', rootRun);
}

/** List `runId` as a follow-up of the branch `rootRun` made (idempotent). */
export async function recordFollowUp(processed: string, rootRun: string, runId: string): Promise<void> {
  if (!isRunId(runId)) throw new StepError('bad_run_id', `run_id ${JSON.stringify(runId)} is not a run id`);
  const dir = followUpIndexDir(processed, rootRun);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, runId), '');
}

/**
 * Every run of `agentBranch`, oldest first: the branch's first run
 * (`rootRun`, whose id the branch carries) and the follow-ups listed under
 * it. Each is checked against its own run folder (its target's branch).
 */
export async function runsOnBranch(processed: string, agentBranch: string, rootRun: string): Promise<BranchRun[]> {
  let listed: string[] = [];
  try {
    listed = await fsp.readdir(followUpIndexDir(processed, rootRun));
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
  }
  const ids = [...new Set([rootRun, ...listed.filter(isRunId)])].sort();
  const out: BranchRun[] = [];
  for (const id of ids) {
    const target = await resolvedTargetOf(processed, id);
    if (target?.agent_branch !== agentBranch) continue;
    out.push({ run_id: id, target, status: await readRunStatusOrNone(path.join(path.resolve(processed), id)) });
  }
  return out;
}

/** A run still on its way (claimed, running, waiting for a retry): not done, not given up. */
export function runInProgress(status: RunStatus | undefined): boolean {
  return status !== undefined && status.state !== 'done' && status.state !== 'error';
}

/**
 * The newest run whose status names the pull request `prUrl`, newest first:
 * a PR this valet opened (or found) for one of its agent branches.
 */
export async function runOfPullRequest(processed: string, prUrl: string): Promise<string | undefined> {
  const want = prUrl.replace(/\/$/, '');
  for (const id of await listRunIds(processed)) {
    if (!isRunId(id)) continue;
    const status = await readRunStatusOrNone(path.join(path.resolve(processed), id));
    if (typeof status?.pr_url === 'string' && status.pr_url.replace(/\/$/, '') === want) return id;
  }
  return undefined;
}

/**
 * A record's follow-up, checked against what pv-resolve recorded in the run
 * folder (`steps/resolve.json`, which a record cannot write): a follow-up
 * may push onto an existing branch, so a forged `target.follow_up` or
 * `target.agent_branch` must not make a run push onto another branch or
 * borrow another run's conversation. Returns the recorded follow-up, or
 * undefined when the run is no follow-up.
 */
export async function checkedFollowUp(runRoot: string, target: Pick<TargetSection, 'agent_branch' | 'follow_up'>): Promise<FollowUpTarget | undefined> {
  if (target.follow_up === undefined) return undefined;
  const recorded = await readStepDone<TargetSection>(runRoot, 'resolve');
  const same = recorded?.follow_up !== undefined && recorded.agent_branch === target.agent_branch
    && JSON.stringify(recorded.follow_up) === JSON.stringify(target.follow_up);
  if (!same) {
    throw new StepError('foreign_path',
      `target.follow_up of run ${path.basename(runRoot)} is not what pv-resolve recorded in ${path.join(runRoot, 'steps', 'resolve.json')}: a record cannot make a run a follow-up`);
  }
  return recorded!.follow_up;
}
