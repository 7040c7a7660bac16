import { defineTool, EXIT_STATUS_HELP, mapRecords } from '@prompt-valet/core';
import { cloneForRun } from './clone-step.js';

export const HELP_EPILOGUE = `Input: records from pv-resolve (one JSON object per line) with "run_id",
"claim.run_root" and "target" {owner, repo, branch, repo_dir, clone_url, agent_branch}.

For each record, holding a lock on the repository (<repos_root>/.locks/<owner>/<repo>.lock):
  1. makes sure target.repo_dir (= <repos_root>/<owner>/<repo>) is a clone of target.clone_url:
     clones it when missing (watcher.auto_clone_missing_repos); a non-git folder or a clone
     of another origin is moved to <repos_root>/.trash/ and cloned afresh when
     watcher.cleanup_non_git_dirs is on, an error otherwise;
  2. fetches origin (pruned) and resets the clone to origin/<branch> (local changes in it,
     untracked files too, are stashed, never dropped);
  3. adds the run's own git worktree at <repos_root>/.worktrees/<owner>/<repo>/<run id> on
     target.agent_branch made from origin/<branch> (a leftover branch of that name is reset;
     an earlier checkout in the way is moved to <repos_root>/.trash/).
A follow-up (target.follow_up) starts its worktree at the head of the agent branch upstream
instead (origin/<agent_branch>, the earlier run's pushed work); a branch gone upstream fails
with follow_up_branch_gone (not retryable).
pv-publish removes the worktree once the work is pushed; a failed run keeps it.

Paths come from the configuration and the record's ids: the run folder is
<processed>/<run id> and the checkout <repos_root>/.worktrees/<owner>/<repo>/<run id>; a record
whose claim.run_root or checkout.dir names another place fails with foreign_path.

Resume: the checkout section is recorded in <run folder>/steps/clone.json before the record is
emitted. A record of a run that already has it:
  - agent step completed (steps/run-codex.json): the checkout, holding the agent's work, is
    reused untouched and the recorded section re-emitted;
  - otherwise: the old checkout is moved to <repos_root>/.trash/ (never deleted) and a fresh
    one made at the base commit recorded the first time, so every try starts from the same
    commit.

Output: the same records with "checkout": {dir, base_sha, branch, repo, reused_branch}, and
the run's status.json set to "cloned". A record that fails gets "error" {step: "clone", code,
message, retryable, detail}:
  bad_target, missing_target, missing_claim   the record is unusable           (not retryable)
  foreign_path, bad_run_id                    the record names places outside
                                              the valet                        (not retryable)
  repo_missing_auto_clone_off                 no clone, auto-clone is off      (not retryable)
  not_a_git_repo, origin_mismatch, repo_dirty the clone is in the way and
                                              cleanup_non_git_dirs is off      (not retryable)
  base_branch_missing                         origin has no such branch        (not retryable)
  follow_up_branch_gone                       a follow-up's agent branch was
                                              deleted upstream                 (not retryable)
  git_failed                                  git failed; detail = git's stderr, credentials
                                              redacted (retryable for network/remote errors)
  repo_lock_timeout                           another run held the lock too long (retryable)

${EXIT_STATUS_HELP}

Example:
  echo '{"v":1,"run_id":"20261126-111909-123-abcd1234","claim":{"run_root":"/srv/prompt-valet/processed/20261126-111909-123-abcd1234"},"target":{"owner":"acme","repo":"widget","branch":"main","repo_dir":"/srv/repos/acme/widget","clone_url":"https://github.com/acme/widget.git","agent_branch":"codex/fix-login-20261126-111909-123-abcd1234","front_matter":{}}}' | pv-clone | jq .checkout`;

export const main = defineTool({
  name: 'pv-clone',
  summary: "pv-clone: sync the repository's clone and give each run its own checkout on its agent branch",
  usage: 'pv-clone [--config FILE] [--verbose] < records > records',
  epilogue: HELP_EPILOGUE,
  async run(ctx) {
    const { config } = ctx.config();
    return mapRecords(ctx, 'clone', (rec) => cloneForRun(rec, config, ctx.log));
  },
});
