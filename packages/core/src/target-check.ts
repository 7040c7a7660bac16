import * as path from 'node:path';
import { checkBranchName, checkOwnerName, checkRepoName, isInside } from './names.js';
import { StepError, type PvRecord, type TargetSection } from './records.js';
import { repoDirFor } from './run-paths.js';

/**
 * The checks every git step makes on a record before any name in it reaches
 * git or a path: owner, repo, base and agent branch are valid names (so none
 * can be read as an option), the run id is one plain path component, and the
 * clone lies at `repos_root/<owner>/<repo>`. Throws StepError `bad_target`.
 */
export interface CheckedTarget {
  runId: string;
  target: TargetSection;
  runRoot: string;
}

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkTargetRecord(rec: PvRecord, reposRoot: string): CheckedTarget {
  const t = rec.target;
  if (!t || typeof t !== 'object') throw new StepError('missing_target', 'record has no "target" section (run pv-resolve first)');
  if (typeof rec.run_id !== 'string' || !RUN_ID_RE.test(rec.run_id)) {
    throw new StepError('bad_target', `run_id ${JSON.stringify(rec.run_id)} is not a run id`);
  }
  const runRoot = rec.claim?.run_root;
  if (typeof runRoot !== 'string' || !path.isAbsolute(runRoot)) {
    throw new StepError('missing_claim', 'record has no claim.run_root (run pv-claim first)');
  }
  for (const [field, check] of [
    ['owner', checkOwnerName(t.owner)],
    ['repo', checkRepoName(t.repo)],
    ['branch', checkBranchName(t.branch)],
    ['agent_branch', checkBranchName(t.agent_branch)],
  ] as const) {
    if (!check.ok) throw new StepError('bad_target', `target.${field}: ${check.reason}`);
  }
  if (t.agent_branch === t.branch) {
    throw new StepError('bad_target', `target.agent_branch ${JSON.stringify(t.agent_branch)} is the base branch itself`);
  }
  if (typeof t.clone_url !== 'string' || t.clone_url.trim() === '' || t.clone_url.startsWith('-')) {
    throw new StepError('bad_target', `target.clone_url ${JSON.stringify(t.clone_url)} is not a repository URL`);
  }
  const expected = repoDirFor({ repos_root: reposRoot }, t.owner, t.repo);
  if (typeof t.repo_dir !== 'string' || path.resolve(t.repo_dir) !== expected || !isInside(path.resolve(reposRoot), expected)) {
    throw new StepError('bad_target', `target.repo_dir ${JSON.stringify(t.repo_dir)} is not ${expected} (repos_root/<owner>/<repo>)`);
  }
  return { runId: rec.run_id, target: t, runRoot };
}
