import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  checkClaimRel, checkedFollowUp, checkoutOfRecord, checkTargetRecord, expectPath, GitError, isErrno, prSettings, readForgeToken, readJsonIfExists, readStepDone,
  INCOMPLETE_LABEL, repoLockPath, runFile, runOfRecord, StepError, updateRunStatus, withRepoLock, writeFileAtomic, writeJsonAtomic,
  type CheckoutSection, type IncompleteReason, type Logger, type PublishSection, type PvRecord, type TargetSection, type ValetConfig,
  locateRunCheckout, repoGit, worktreeGit, worktreeStatus, type RunCheckout,
} from '@prompt-valet/core';
import { findOpenPr, ghHostForPr, ghRepoArg, openPrOnce, TOKEN_VARS } from './gh.js';
import { commitMessage, prBody, prTitle, RUN_TRAILER, type PrTextSources } from './pr-text.js';
import { commentOnce, commentOnOpenPr, type GhTarget } from './follow-up.js';
import { findSecret, findSecretInDiff, secretError } from './secret-scan.js';
import { addedGitlinks } from './nested-repos.js';

/**
 * One record through pv-publish. Every side effect is idempotent and its
 * progress durable in `publish.json` (docs/lifecycle.md, "A run resumes"):
 *
 *   committed → pushing → pushed → pr_opened | pr_exists     (or no_changes)
 *
 * The commit is recorded before the push; on resume `git ls-remote` tells
 * whether the push landed, and the PR is looked up by its head branch before
 * one is made. A commit on the remote agent branch carrying this run's
 * trailer is this run's, so a run resumed without its run folder's
 * progress does not commit again. One run → one branch → at most one PR.
 */
export interface PublishContext {
  config: ValetConfig;
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** secret values to block in the diff and PR text besides the token variables in env (the forge token) */
  knownSecrets?: readonly string[];
  /** the work of a run stopped before the agent finished (incomplete.ts): always a draft, with the incomplete label */
  incomplete?: IncompleteReason;
}

export type PublishProgressOutcome = 'committed' | 'pushing' | PublishSection['outcome'];

/** `publish.json` in the run folder. */
export interface PublishProgress {
  outcome: PublishProgressOutcome;
  run_id: string;
  at: string;
  branch: string;
  title?: string;
  commit?: string;
  base_sha?: string;
  pr_url?: string;
  /** a follow-up's comment on the existing PR */
  comment_url?: string;
}

const FINISHED: readonly PublishProgressOutcome[] = ['pr_opened', 'pr_exists', 'pr_commented', 'no_changes'];

interface Run {
  runId: string;
  runRoot: string;
  target: TargetSection;
  workTree: string;
  commonDir: string;
  reposRoot: string;
}

async function recordProgress(run: Run, progress: Omit<PublishProgress, 'run_id' | 'at' | 'branch'>): Promise<PublishProgress> {
  const full: PublishProgress = { ...progress, run_id: run.runId, branch: run.target.agent_branch, at: new Date().toISOString() };
  await writeJsonAtomic(runFile(run.runRoot, 'publish'), full);
  return full;
}

async function dirExists(dir: string): Promise<boolean> {
  try {
    return (await fsp.lstat(dir)).isDirectory();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

function sectionOf(p: PublishProgress): PublishSection {
  const outcome = p.outcome === 'committed' || p.outcome === 'pushing' ? 'pushed' : p.outcome;
  const section: PublishSection = { outcome, branch: p.branch };
  if (p.commit) section.commit = p.commit;
  if (p.pr_url) section.pr_url = p.pr_url;
  if (p.title) section.title = p.title;
  if (p.comment_url) section.comment_url = p.comment_url;
  return section;
}

export async function publishRun(rec: PvRecord, ctx: PublishContext): Promise<PvRecord> {
  const started = Date.now();
  const { config, env, log } = ctx;
  const w = config.watcher;
  const { target: t } = checkTargetRecord(rec, config.repos_root);
  const { runId, runRoot } = runOfRecord(rec, config);
  const workTree = checkoutOfRecord(rec, config, runId);
  expectPath('agent.last_message', rec.agent?.last_message, runFile(runRoot, 'lastMessage'));
  const runningFile = typeof rec.claim?.rel === 'string' ? path.join(path.resolve(config.inbox), checkClaimRel(rec.claim.rel)) : undefined;
  if (runningFile) expectPath('claim.path', rec.claim?.path, runningFile);
  // Checked against the operator's limits before anything is pushed: a forged record widens nothing.
  const pr = prSettings(t.front_matter, w);
  const { draft, labels } = ctx.incomplete ? { draft: true, labels: [...new Set([...pr.labels, INCOMPLETE_LABEL])] } : pr;
  // A follow-up pushes onto an existing branch: only one pv-resolve recorded for this run.
  const followUp = await checkedFollowUp(runRoot, t);
  const run: Run = { runId, runRoot, target: t, workTree, commonDir: path.join(path.resolve(t.repo_dir), '.git'), reposRoot: config.repos_root };

  const finish = async (p: PublishProgress): Promise<PvRecord> => {
    if (await dirExists(workTree)) await removeCheckout(run, log);
    await updateRunStatus(runRoot, {
      state: 'published', step: 'publish', outcome: sectionOf(p).outcome,
      ...(p.pr_url ? { pr_url: p.pr_url } : {}),
      durations_ms: { publish: Date.now() - started },
    });
    return { ...rec, publish: sectionOf(p) };
  };

  const ghFor = (): GhTarget => {
    const host = ghHostForPr(env, w);
    return { opts: { cmd: w.gh_cmd, host, env, cwd: runRoot }, repoArg: ghRepoArg(host, t.owner, t.repo) };
  };

  let progress = await readJsonIfExists<PublishProgress>(runFile(runRoot, 'publish'));
  if (progress && progress.run_id !== runId) progress = undefined;
  if (progress && (FINISHED.includes(progress.outcome) || (progress.outcome === 'pushed' && w.publisher !== 'gh'))) {
    log.info(`run ${runId}: published earlier (${progress.outcome}); nothing to do again`);
    return finish(progress);
  }

  const src: PrTextSources = { runId, runRoot, log, ...(runningFile ? { runningFile } : {}), ...(ctx.incomplete ? { incomplete: ctx.incomplete } : {}) };
  const title = await prTitle(rec, src);
  const body = await prBody(rec, src);
  // The forge token wherever it comes from (systemd credential, file, environment) is the first secret to look for.
  const forge = readForgeToken(env);
  const knownSecrets = [...TOKEN_VARS.map((v) => env[v] ?? ''), ...(forge ? [forge.token] : []), ...(ctx.knownSecrets ?? [])];
  const textHit = findSecret(`${title}\n${body}`, 'the PR title and body', knownSecrets);
  if (textHit) throw secretError(textHit, runFile(runRoot, 'lastMessage'));
  const bodyFile = runFile(runRoot, 'prBody');
  await writeFileAtomic(bodyFile, body);

  const baseSha = await recordedBase(rec, runRoot);
  /** origin's agent branch as commitOrFind saw it in this process: pushOnce needs no second ls-remote */
  let remoteSeen: RemoteTip | undefined;
  if (!progress?.commit) {
    const made = await commitOrFind(run, rec, title, baseSha, ctx);
    if (made === 'no_changes') {
      log.info(`run ${runId}: the agent changed nothing; no branch pushed, no PR`);
      // A follow-up that only answered: the answer still goes on the PR.
      const answered = followUp && w.publisher === 'gh' ? await commentOnOpenPr(ghFor(), { runId, runRoot, title, body }, t.agent_branch, log) : undefined;
      return finish(await recordProgress(run, { outcome: 'no_changes', title, ...answered }));
    }
    remoteSeen = made.remote;
    // Checked before publish.json names the commit: a refused commit is undone, and a retry commits afresh.
    if (!made.pushed) await checkCommit(run, baseSha, made.commit, knownSecrets, made.undoTo);
    progress = await recordProgress(run, { outcome: made.pushed ? 'pushed' : 'committed', commit: made.commit, base_sha: baseSha, title });
  } else if (progress.outcome !== 'pushed') {
    await checkCommit(run, baseSha, progress.commit, knownSecrets);
  }
  const commit = progress.commit!;

  if (progress.outcome !== 'pushed') {
    progress = await recordProgress(run, { outcome: 'pushing', commit, base_sha: baseSha, title });
    await pushOnce(run, commit, log, followUp ? baseSha : undefined, remoteSeen);
    progress = await recordProgress(run, { outcome: 'pushed', commit, base_sha: baseSha, title });
  }

  if (w.publisher !== 'gh') {
    log.info(`run ${runId}: pushed ${t.agent_branch} (publisher none: PR text in ${bodyFile})`);
    return finish(progress);
  }
  const { opts: ghOpts, repoArg } = ghFor();
  if (followUp) {
    const existing = await findOpenPr(ghOpts, repoArg, t.agent_branch);
    if (existing) {
      // A follow-up: the PR got the commits by the push; the summary goes on it as a comment (follow-up.ts).
      const commentUrl = await commentOnce(ghOpts, repoArg, { runId, runRoot, prUrl: existing, title, body }, log);
      return finish(await recordProgress(run, { outcome: 'pr_commented', commit, title, pr_url: existing, ...(commentUrl ? { comment_url: commentUrl } : {}) }));
    }
    log.info(`run ${runId}: no open PR for ${t.agent_branch} (closed?); opening one for the follow-up`);
  }
  const opened = await openPrOnce(ghOpts, repoArg, { base: t.branch, head: t.agent_branch, title, bodyFile, draft, labels });
  if (opened.existed) {
    log.info(`run ${runId}: an open PR for ${t.agent_branch} already exists: ${opened.url}`);
    return finish(await recordProgress(run, { outcome: 'pr_exists', commit, title, pr_url: opened.url }));
  }
  log.info(`run ${runId}: opened ${opened.url}`);
  return finish(await recordProgress(run, { outcome: 'pr_opened', commit, title, pr_url: opened.url }));
}

/**
 * The commit the agent branch starts from, as pv-clone recorded it in the
 * run folder (the record's copy only when that is missing). The secret scan
 * covers everything from here to the commit pushed.
 */
async function recordedBase(rec: PvRecord, runRoot: string): Promise<string> {
  const recorded = (await readStepDone<CheckoutSection>(runRoot, 'clone'))?.base_sha ?? rec.checkout?.base_sha;
  if (typeof recorded !== 'string' || !/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(recorded)) {
    throw new StepError('missing_checkout', `no base commit recorded for this run (steps/clone.json or checkout.base_sha): run pv-clone first`);
  }
  return recorded;
}

/** The tip of the agent branch on origin (`sha` undefined when it is not there), as seen at one moment. */
interface RemoteTip {
  sha: string | undefined;
}

async function remoteTip(run: Run): Promise<RemoteTip> {
  const ref = `refs/heads/${run.target.agent_branch}`;
  const out = await repoGit(run.commonDir, ['ls-remote', '--', 'origin', ref]);
  const line = out.split('\n').find((l) => l.endsWith(`\t${ref}`));
  return { sha: line?.split('\t')[0] };
}

/**
 * What is pushed is checked first, in one diff from the base: no
 * repository the agent made inside the checkout (it would be pushed as a
 * submodule pointing nowhere; refused, naming it), and no secret in the
 * lines added. `undoTo`: the commit was made by pv-publish on that HEAD,
 * and a nested repository undoes it (branch and index back as they were,
 * the work tree untouched), so that a retry after the fix commits afresh.
 */
async function checkCommit(run: Run, baseSha: string, commit: string, knownSecrets: readonly string[], undoTo?: string): Promise<void> {
  // Prefixes, rename and submodule handling pinned: the user's diff config must not change what is read.
  const diff = await repoGit(run.commonDir, ['diff', '--no-ext-diff', '--no-textconv', '--no-color', '--no-renames', '--ignore-submodules=none',
    '--src-prefix=a/', '--dst-prefix=b/', '-U0', baseSha, commit, '--']);
  const nested = addedGitlinks(diff);
  if (nested.length > 0) {
    if (undoTo) await worktreeGit(await locateRunCheckout(run.target.repo_dir, run.workTree), ['reset', '--quiet', undoTo]);
    throw new StepError('nested_repo',
      `the agent left a git repository inside the checkout (${nested.map((p) => JSON.stringify(p)).join(', ')}); it would be pushed as a submodule pointing nowhere: remove its .git or the folder in ${run.workTree} and retry`);
  }
  const hit = findSecretInDiff(diff, knownSecrets);
  if (hit) throw secretError(hit, `commit ${commit.slice(0, 12)} of ${run.target.repo_dir} and ${run.workTree}`);
}

/** Whether `commit` carries this run's trailer (`Prompt-Valet-Run: <run id>`). */
async function isRunCommit(commonDir: string, commit: string, runId: string): Promise<boolean> {
  const out = await repoGit(commonDir, ['log', '-1', `--format=%(trailers:key=${RUN_TRAILER},valueonly)`, commit, '--']);
  return out.split('\n').some((v) => v.trim() === runId);
}

/**
 * Commit the checkout's changes on the agent branch, or find this run's
 * commit already made: the checkout's HEAD (a crash after the commit, before
 * publish.json said so) or the remote agent branch (the run resumed without
 * the progress of an earlier try). `pushed` when the commit is already on
 * origin; `undoTo` when the commit was made by pv-publish and is not
 * pushed: the HEAD it was made on.
 */
async function commitOrFind(run: Run, rec: PvRecord, title: string, baseSha: string, ctx: PublishContext):
  Promise<{ commit: string; pushed: boolean; remote: RemoteTip; undoTo?: string } | 'no_changes'> {
  const remote = await remoteTip(run);
  if (remote.sha) {
    await repoGit(run.commonDir, ['fetch', '--quiet', '--no-write-fetch-head', 'origin',
      `+refs/heads/${run.target.agent_branch}:refs/remotes/origin/${run.target.agent_branch}`]);
    if (await isRunCommit(run.commonDir, remote.sha, run.runId)) {
      ctx.log.info(`run ${run.runId}: origin already has this run's commit ${remote.sha.slice(0, 12)} on ${run.target.agent_branch}`);
      return { commit: remote.sha, pushed: true, remote };
    }
  }
  if (!(await dirExists(run.workTree))) {
    throw new StepError('checkout_missing', `checkout ${run.workTree} does not exist and nothing was committed for run ${run.runId}`);
  }
  const co = await locateRunCheckout(run.target.repo_dir, run.workTree);
  const state = await checkoutState(co);
  const head = state.head;
  const w = ctx.config.watcher;
  // The agent's own run file (written by pv-run-codex) alone is no change.
  const ownFile = w.agent_runs_dir ? path.posix.join(w.agent_runs_dir, `codex-run-${run.runId}.md`) : undefined;
  const changed = state.changed.filter((p) => p !== ownFile);
  if (changed.length === 0) {
    if (head === baseSha) return 'no_changes';
    // This run's commit from a try that stopped before checking it: undone to its one parent if refused.
    if (await isRunCommit(run.commonDir, head, run.runId)) return { commit: head, pushed: false, remote, undoTo: `${head}^` };
  }
  await moveAgentBranchToHead(co, run.target.agent_branch, head, state.branch);
  await worktreeGit(co, ['add', '--all', '--', '.']);
  // --allow-empty: commits the agent made itself (isolation none) get a tip carrying the run's trailer.
  await worktreeGit(co, ['commit', '--quiet', '--no-verify', '--allow-empty', '--cleanup=strip', '-F', '-'], {
    input: commitMessage(rec, run.runId, title),
    env: {
      GIT_AUTHOR_NAME: w.commit_author_name, GIT_AUTHOR_EMAIL: w.commit_author_email,
      GIT_COMMITTER_NAME: w.commit_author_name, GIT_COMMITTER_EMAIL: w.commit_author_email,
    },
  });
  return { commit: (await worktreeGit(co, ['rev-parse', '--verify', 'HEAD^{commit}'])).trim(), pushed: false, remote, undoTo: head };
}

interface CheckoutState {
  /** the commit HEAD is at */
  head: string;
  /** the branch HEAD is on (short name), undefined when detached */
  branch: string | undefined;
  /** paths changed in the work tree or the index, gitlinks included */
  changed: string[];
}

/** HEAD, its branch and the changed paths in one `git status --porcelain=v2 --branch -z` (instead of a rev-parse and a symbolic-ref besides). */
async function checkoutState(co: RunCheckout): Promise<CheckoutState> {
  const { head, branch, changed } = await worktreeStatus(co, { branch: true });
  if (!head || !/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(head)) {
    throw new StepError('git_failed', `the checkout ${co.workTree} has no commit at HEAD (${head ?? 'none'}): it was not made by pv-clone, or the agent broke it`);
  }
  return { head, branch, changed: changed.map((entry) => entry.path) };
}

/**
 * The agent may have left HEAD on another branch or detached: the agent
 * branch is set to where HEAD is, and HEAD to it, without touching the work
 * tree or the index. (`current` is the short name git status gives; a branch
 * named refs/… would be ambiguous there, and is always set.)
 */
async function moveAgentBranchToHead(co: RunCheckout, branch: string, head: string, current: string | undefined): Promise<void> {
  if (current === branch && !branch.startsWith('refs/')) return;
  const ref = `refs/heads/${branch}`;
  await worktreeGit(co, ['update-ref', '-m', 'prompt-valet: the agent left its branch', ref, head]);
  await worktreeGit(co, ['symbolic-ref', 'HEAD', ref]);
}

/**
 * Push the recorded commit unless origin already has it. The lease accepts
 * only an absent branch or this run's own earlier commit at its tip (for a
 * follow-up also the agent branch's head it started from), so nothing
 * someone else pushed to the agent branch is overwritten.
 */
async function pushOnce(run: Run, commit: string, log: Logger, startedFrom?: string, seen?: RemoteTip): Promise<void> {
  const branch = run.target.agent_branch;
  const ref = `refs/heads/${branch}`;
  // Seen a moment ago by commitOrFind (then it is not this run's commit, or nothing would have been committed);
  // the lease below still makes the push fail if it moved since.
  const remote = (seen ?? (await remoteTip(run))).sha;
  if (remote === commit) {
    log.info(`run ${run.runId}: ${branch} is already on origin at ${commit.slice(0, 12)}; not pushed again`);
    return;
  }
  let expected = '';
  if (remote === startedFrom) expected = remote ?? '';
  else if (remote && !seen) {
    await repoGit(run.commonDir, ['fetch', '--quiet', '--no-write-fetch-head', 'origin', `+${ref}:refs/remotes/origin/${branch}`]);
    if (await isRunCommit(run.commonDir, remote, run.runId)) expected = remote;
  }
  try {
    await repoGit(run.commonDir, ['push', '--quiet', '--no-verify', `--force-with-lease=${ref}:${expected}`, 'origin', `${commit}:${ref}`]);
  } catch (err) {
    if (err instanceof GitError && /\[rejected\]|\[remote rejected\]|stale info|non-fast-forward|fetch first|pre-receive hook declined/i.test(`${err.stderr}\n${err.message}`)) {
      throw new StepError('push_rejected',
        `origin rejected the push of ${branch}; the commit ${commit.slice(0, 12)} is kept on the local branch: ${err.message}`,
        { retryable: true, detail: err.stderr });
    }
    throw err;
  }
}

/**
 * Remove the run's worktree once its work is upstream (or there was none),
 * under the repository lock, as pv-clone adds them; the local agent branch
 * goes too. Failing to remove it loses nothing: logged.
 */
async function removeCheckout(run: Run, log: Logger): Promise<void> {
  const t = run.target;
  try {
    await withRepoLock(repoLockPath(run.reposRoot, t.owner, t.repo), async () => {
      await repoGit(run.commonDir, ['worktree', 'remove', '--force', '--', run.workTree]);
      await repoGit(run.commonDir, ['update-ref', '-d', `refs/heads/${t.agent_branch}`]);
    });
  } catch (err) {
    log.warn(`could not remove the checkout ${run.workTree}: ${(err as Error).message}`);
  }
}
