import * as path from 'node:path';
import {
  checkBranchName,
  checkOwnerName,
  checkRelativePath,
  checkRepoName,
  cloneUrl,
  expectPath,
  folderToBranch,
  isErrno,
  parsePrompt,
  parsePromptName,
  recordRunId,
  PathEscapeError,
  readPromptText,
  resolveInside,
  runFile,
  runRootFor,
  slugify,
  StepError,
  type NameCheck,
  type PvRecord,
  type TargetSection,
  type ValetConfig,
} from '@prompt-valet/core';
import { resolveFollowUp } from './follow-up.js';

/**
 * Where a claimed prompt goes, from its place in the inbox:
 *
 *   legacy_single_owner  <repo>/<branch folder>/[subfolders/]<file>   owner = git_owner
 *   multi_owner          <owner>/<repo>/<branch folder>/[subfolders/]<file>
 *
 * The branch folder is ONE path component (`feature~x` is branch
 * `feature/x`, core folderToBranch); folders below it are the operator's own
 * grouping. Every name is checked before it can reach git or a path; a bad
 * one fails the record, not retryable.
 */
export interface Place {
  owner: string;
  repo: string;
  branch: string;
  /** the operator's subfolders below the branch folder */
  subdirs: string[];
  file: string;
}

function fail(check: NameCheck, code: string, where: string): void {
  if (!check.ok) throw new StepError(code, `${where}: ${check.reason}`);
}

/** Parse the claim's path relative to the inbox (pure; no filesystem). */
export function placeOf(rel: string, config: Pick<ValetConfig, 'inbox_mode' | 'git_owner'>): Place {
  fail(checkRelativePath(rel), 'bad_path', rel);
  const parts = rel.split('/');
  const multi = config.inbox_mode === 'multi_owner';
  const need = multi ? 4 : 3;
  if (parts.length < need) {
    const shape = multi ? '<owner>/<repo>/<branch>/<name>.prompt.md' : '<repo>/<branch>/<name>.prompt.md';
    throw new StepError('path_too_shallow', `${rel}: a prompt must lie at ${shape} in the inbox (inbox_mode ${config.inbox_mode})`);
  }
  const owner = multi ? parts[0]! : config.git_owner;
  if (!multi && !owner) {
    throw new StepError('owner_not_configured', `${rel}: inbox_mode legacy_single_owner needs git_owner (or watcher.git_default_owner) in the config`);
  }
  const [repo, folder] = multi ? [parts[1]!, parts[2]!] : [parts[0]!, parts[1]!];
  fail(checkOwnerName(owner), 'bad_owner', rel);
  fail(checkRepoName(repo), 'bad_repo', rel);
  const branch = folderToBranch(folder);
  fail(checkBranchName(branch), 'bad_branch', `${rel} (branch folder ${JSON.stringify(folder)})`);
  const file = parts[parts.length - 1]!;
  const subdirs = parts.slice(need - 1, -1);
  for (const d of subdirs) {
    if (d.startsWith('.') || /[\x00-\x1f\x7f]/.test(d)) throw new StepError('bad_path', `${rel}: subfolder ${JSON.stringify(d)} is hidden or holds control characters`);
  }
  const parsed = parsePromptName(file);
  if (!parsed) throw new StepError('bad_prompt_name', `${rel}: ${JSON.stringify(file)} is not a prompt file name (x.prompt.md)`);
  if (/[\x00-\x1f\x7f]/.test(parsed.stem)) throw new StepError('bad_prompt_name', `${rel}: the prompt name holds control characters`);
  return { owner, repo, branch, subdirs, file };
}

/** The record's claim, or `not_claimed` when there is nothing to resolve. */
export function claimOf(rec: PvRecord): NonNullable<PvRecord['claim']> {
  const claim = rec.claim;
  if (!claim || typeof claim.rel !== 'string' || !rec.run_id) {
    throw new StepError('not_claimed', 'record has no claim section (run_id, claim.rel): nothing to resolve');
  }
  return claim;
}

export async function resolveRecord(rec: PvRecord, config: ValetConfig): Promise<TargetSection> {
  const claim = claimOf(rec);
  const place = placeOf(claim.rel, config);
  const runRoot = runRootFor(config, recordRunId(rec));
  const runningFile = path.join(path.resolve(config.inbox), claim.rel);
  expectPath('claim.inbox', claim.inbox, config.inbox);
  expectPath('claim.path', claim.path, runningFile);
  try {
    await resolveInside(config.inbox, claim.rel);
  } catch (err) {
    if (err instanceof PathEscapeError) throw new StepError('path_escape', err.message);
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const text = await readClaimedPrompt(runRoot, runningFile, config.limits.max_prompt_bytes);
  // Checked here once against the operator's limits; later steps re-check target.front_matter.
  const { front_matter } = parsePrompt(text, config.watcher);
  const common = {
    owner: place.owner,
    repo: place.repo,
    repo_dir: path.join(config.repos_root, place.owner, place.repo),
    clone_url: cloneUrl(config.watcher.git_protocol, config.watcher.git_default_host, place.owner, place.repo),
    front_matter,
    subdirs: place.subdirs,
  };
  // A follow-up goes on with the earlier run's agent branch (and PR); its base is that run's base.
  const followUp = await resolveFollowUp(place, front_matter, recordRunId(rec), config);
  if (followUp) return { ...common, branch: followUp.base, agent_branch: followUp.agent_branch, follow_up: followUp.follow_up };
  const stem = parsePromptName(place.file)!.stem;
  const prefix = config.watcher.agent_branch_prefix;
  const agent_branch = `${prefix}${slugify(stem)}-${rec.run_id}`;
  const check = checkBranchName(agent_branch);
  if (!check.ok) throw new StepError('bad_agent_branch', `agent branch ${JSON.stringify(agent_branch)} (watcher.agent_branch_prefix ${JSON.stringify(prefix)}): ${check.reason}`);
  return { ...common, branch: place.branch, agent_branch };
}

/** The run folder's copy (made by pv-claim); the running file only if there is none, never through a symlink. */
async function readClaimedPrompt(runRoot: string | undefined, runningPath: string, maxBytes: number): Promise<string> {
  if (runRoot) {
    try {
      return await readPromptText(runFile(runRoot, 'prompt'), maxBytes);
    } catch (err) {
      if (isErrno(err, 'ELOOP')) throw new StepError('symlink_refused', `${runFile(runRoot, 'prompt')} is a symbolic link; not read`);
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
  try {
    return await readPromptText(runningPath, maxBytes);
  } catch (err) {
    if (isErrno(err, 'ELOOP')) throw new StepError('symlink_refused', `${runningPath} is a symbolic link; not read`);
    if (isErrno(err, 'ENOENT')) throw new StepError('prompt_missing', `neither the run folder's prompt copy nor ${runningPath} exists`);
    throw err;
  }
}
