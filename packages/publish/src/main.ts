import { defineTool, EXIT_STATUS_HELP, mapRecords } from '@prompt-valet/core';
import { incompleteWorkOf, publishIncompleteWork } from './incomplete.js';
import { publishRun } from './publish-step.js';

export const HELP_EPILOGUE = `Input: records from pv-run-codex (one JSON object per line) with "run_id", "claim",
"target" (from pv-resolve) and "checkout" (from pv-clone).

Paths come from the configuration and the record's ids, never from the record: the run
folder is <processed>/<run id>, the checkout <repos_root>/.worktrees/<owner>/<repo>/<run id>,
the last message <run folder>/last-message.md. A record whose claim.run_root, claim.path,
checkout.dir or agent.last_message names another place fails with foreign_path.

For each record, in the run's checkout:
  - nothing changed but the agent's own <watcher.agent_runs_dir>/codex-run-<run id>.md:
    outcome "no_changes", no branch pushed, no PR;
  - otherwise stages everything, commits "Codex: <prompt file> (run <run id>)" with the
    trailer "Prompt-Valet-Run: <run id>" as watcher.commit_author_name/email, scans the
    diff and the PR text for secrets, pushes target.agent_branch to origin, and (with
    watcher.publisher: gh) opens a PR into target.branch with
      gh pr create --repo [HOST/]owner/repo --base B --head A --title T --body-file F
    (--draft and --label from front matter, else watcher.pr_draft / watcher.pr_labels).
    With publisher: none the branch is pushed and the PR text is only written down.
  - the title is front matter "title", else the prompt's first heading, else its file name;
    the body holds the agent's last message (trimmed), the prompt file, the run id and a
    hidden marker <!-- prompt-valet run_id=… -->.
  - a follow-up (target.follow_up: the checkout started at the agent branch's head) pushes
    onto the same agent branch; when that branch has an open PR, the PR gets the commits
    and a comment with the summary (gh pr comment; outcome "pr_commented", comment_url,
    <run folder>/pr-comment.md) instead of a second PR. The comment carries the run's
    marker and is looked for first (gh pr view --json comments), so it is posted once.
    A follow-up that changed nothing still comments its summary on the open PR
    (outcome "no_changes" with pr_url and comment_url).
  - the checkout (git worktree) is removed once the work is pushed or there was none; a
    failed run keeps it.

A record that carries "error" passes through untouched, except a stopped agent's:
pv-run-codex's error with "incomplete" (its time, idle or token limit, or an ABORT).
With watcher.keep_incomplete_work (default true) its work is published as above, always
as a draft with the label prompt-valet:incomplete added, the body opening with why it is
unfinished; the agent's error stays the record's error, its message and
error.incomplete naming the branch, commit and draft PR (publish.incomplete: true). If
keeping it fails for a retryable reason (gh_failed, push_rejected, …) that failure is
the error, with the agent's as its cause: the resumed run publishes again without
running the agent. Any other failure (secret_detected) and keep_incomplete_work: false
leave the agent's error, with error.incomplete.not_kept saying why; the work stays in
the checkout. A shutdown (aborted_shutdown) is not such a stop: it passes through.

The checkout is hostile (the agent wrote it): git runs with --git-dir set to the worktree's
folder inside the shared clone (<repo>/.git/worktrees/<run id>, never the checkout's .git
file) and --work-tree, hooks off (core.hooksPath=/dev/null), no fsmonitor, pager,
credential helper or submodule recursion, and for commands that read the work tree no
system or global config (so a .gitattributes filter or diff driver reaches nothing). Files
are read from the run folder without following symlinks, at most 64 KiB. A repository the
agent made inside the checkout is refused (nested_repo).

Secrets: before the push, the lines the diff adds and the PR title and body are scanned for
the token pv-publish holds (GH_TOKEN, GITHUB_TOKEN, GH_ENTERPRISE_TOKEN,
GITHUB_ENTERPRISE_TOKEN) and for ghp_/gho_/ghs_/ghu_/ghr_/github_pat_ tokens, AWS key ids
(AKIA…), private keys (-----BEGIN … PRIVATE KEY-----), sk-… API keys and xoxb-/xoxp- Slack
tokens. A hit fails the record (secret_detected) naming the file, line and kind, never the
secret; nothing is pushed.

Resume: every side effect is recorded in <run folder>/publish.json before the next one:
  committed → pushing (the commit is recorded before the push) → pushed → pr_opened | pr_exists
                                                                         | pr_commented
A rerun continues from there: git ls-remote tells whether the push landed (pushed again
only if not), gh pr create refuses a second PR for the branch and, when it fails, an open
PR of the branch is looked up (pr_exists), and a commit on the remote agent branch carrying
this run's trailer counts as this run's (no second commit). A finished publish.json is re-emitted as it is. One run → one branch → one PR.
The push uses --force-with-lease: only an absent branch or this run's own commit (for a
follow-up: the head it started from) is replaced, never someone else's work.

gh host: $GH_HOST, else watcher.gh_host, else watcher.git_default_host. gh gets the token
from its own environment variables (GH_TOKEN, GITHUB_TOKEN, GH_ENTERPRISE_TOKEN); it never
reaches git, a log, a record or the run folder.

Output: the same records with "publish": {outcome: pr_opened | pr_exists | pr_commented | pushed
| no_changes, commit, pr_url, branch, title, comment_url, incomplete}. Run folder: pr-body.md (the PR body), publish.json (progress
and outcome), status.json "published". A record that fails gets "error" {step: "publish", …}:
  bad_target, missing_target, missing_claim, missing_checkout   unusable record (not retryable)
  foreign_path, bad_run_id                  the record names places outside the valet
                                                                                 (not retryable)
  checkout_missing, not_a_git_repo          the checkout is gone or broken       (not retryable)
  nested_repo                               the agent left a git repository in the checkout
                                                                                 (not retryable)
  secret_detected                           a secret in the diff or the PR text; nothing pushed
                                                                                 (not retryable)
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
    const publishCtx = { config, env: ctx.io.env, log: ctx.log };
    return mapRecords(ctx, 'publish', async (rec) => {
      // A failed record passes through, unless it is a stopped agent's work to keep.
      if (rec.error) return incompleteWorkOf(rec) ? publishIncompleteWork(rec, publishCtx) : rec;
      return publishRun(rec, publishCtx);
    }, { includeFailed: true });
  },
});
