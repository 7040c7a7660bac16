import { defineTool, EXIT_STATUS_HELP, mapRecords } from '@prompt-valet/core';
import { publishRun } from './publish-step.js';

export const HELP_EPILOGUE = `Input: records from pv-run-codex (one JSON object per line) with "run_id", "claim",
"target" (from pv-resolve), "checkout" {dir, base_sha} (from pv-clone) and optionally
"agent" {last_message}.

For each record, in the run's checkout:
  - nothing changed but the agent's own <watcher.agent_runs_dir>/codex-run-<run id>.md:
    outcome "no_changes", no branch pushed, no PR;
  - otherwise stages everything, commits "Codex: <prompt file> (run <run id>)" as
    watcher.commit_author_name/email, pushes target.agent_branch to origin, and (with
    watcher.publisher: gh) opens a PR into target.branch with
      gh pr create --repo [HOST/]owner/repo --base B --head A --title T --body-file F
    (--draft and --label from front matter, else watcher.pr_draft / watcher.pr_labels).
    An open PR for the branch is looked up first, so a rerun never opens a second one.
    With publisher: none the branch is pushed and the PR text is only written down.
  - the title is front matter "title", else the prompt's first heading, else its file name;
    the body holds the agent's last message (trimmed), the prompt file, the run id and a
    hidden marker <!-- prompt-valet run_id=… -->.
  - the checkout (git worktree) is removed once the work is pushed or there was none; a
    failed run keeps it.
gh host: $GH_HOST, else watcher.gh_host, else watcher.git_default_host. gh gets the token
from its own environment variables (GH_TOKEN, GITHUB_TOKEN, GH_ENTERPRISE_TOKEN); it never
reaches git, a log, a record or the run folder.

Output: the same records with "publish": {outcome: pr_opened | pr_exists | pushed | no_changes,
commit, pr_url, branch, title}. Run folder: pr-body.md (the PR body), publish.json (what was
done), status.json "published". A record that fails gets "error" {step: "publish", …}:
  bad_target, missing_target, missing_claim, missing_checkout   unusable record (not retryable)
  checkout_missing, not_a_git_repo          the checkout is gone or broken       (not retryable)
  push_rejected                             origin refused the push; the commit stays on the
                                            local branch and in the checkout     (retryable)
  git_failed                                git failed; detail = git's stderr    (retryable for
                                                                                  network errors)
  gh_failed                                 gh failed; its message, token removed (retryable)
  gh_missing                                gh is not installed                  (not retryable)
  gh_host_unknown                           no usable GitHub host configured     (not retryable)

${EXIT_STATUS_HELP}

Example:
  pv-resolve < claimed | pv-clone | pv-run-codex | GH_TOKEN=… pv-publish | jq .publish`;

export const main = defineTool({
  name: 'pv-publish',
  summary: "pv-publish: commit the agent's work, push its branch and open a pull request with gh",
  usage: 'pv-publish [--config FILE] [--verbose] < records > records',
  epilogue: HELP_EPILOGUE,
  async run(ctx) {
    const { config } = ctx.config();
    return mapRecords(ctx, 'publish', (rec) => publishRun(rec, { config, env: ctx.io.env, log: ctx.log }));
  },
});
