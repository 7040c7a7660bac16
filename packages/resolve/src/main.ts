import {
  defineTool, EXIT_STATUS_HELP, mapRecords, markStepDone, pathExists, readStepDone, recordFollowUp, recordRunId, runOfRecord, updateRunStatus,
  type TargetSection,
} from '@prompt-valet/core';
import { claimOf, resolveRecord } from './resolve.js';

export const main = defineTool({
  name: 'pv-resolve',
  summary: 'Turn each claimed prompt\'s place in the inbox into owner, repo, base branch, clone URL and agent branch.',
  usage: 'pv-resolve [--config FILE] < records',
  epilogue: `
Input: records from pv-claim. The claim's path relative to the inbox is
  legacy_single_owner  <repo>/<branch>/[subfolders/]<name>.prompt.md   (owner: git_owner)
  multi_owner          <owner>/<repo>/<branch>/[subfolders/]<name>.prompt.md
The branch folder is one folder: "feature~x" is the branch "feature/x".
Folders below it are yours to group prompts; they do not change the target.

Output: each record with
  "target": {"owner","repo","branch","repo_dir","clone_url","agent_branch","front_matter","subdirs","follow_up"}
repo_dir is repos_root/<owner>/<repo>; clone_url follows watcher.git_protocol
(https://host/o/r.git, ssh git@host:o/r.git, git://host/o/r.git,
file://<folder>/o/r.git); agent_branch is
<watcher.agent_branch_prefix><slug of the prompt name>-<run id>. The prompt's
YAML front matter (title, draft, labels, model, sandbox, timeout, follow_up) is
checked against the operator's limits and carried as front_matter: it may
narrow them (a stricter sandbox, a shorter timeout, a model from
watcher.allowed_models, draft: true, more labels), never widen them. A path
that does not resolve (too shallow, a hostile name), front matter that is
unreadable, unknown or wider than the config (bad_front_matter), or a prompt
larger than limits.max_prompt_bytes (prompt_too_large, not read) gives the
record a non-retryable error.

Follow-ups: a prompt in an agent branch's folder (codex~x-<run id>, made by
pv-tree), or with front matter follow_up: <run id> or follow_up: <PR URL>,
continues that run's work: target.agent_branch is the earlier run's branch,
target.branch its base, and target.follow_up says which runs
({via, of_run, root_run, previous_run, pr_url}). Only branches this valet
created: the run must have a folder here that resolved to the branch
(follow_up_unknown_run), a PR URL must be one a run here opened
(follow_up_unknown_pr), and the prompt must lie in a folder of the same
repository (follow_up_other_repo). While an earlier run of the branch is
unsettled the follow-up waits: follow_up_busy (retryable).

Paths come from the configuration: the run folder is processed/<run id>
and the prompt inbox/<claim.rel>; a record whose claim.run_root, claim.path
or claim.inbox names another place fails with foreign_path.

Resume: the target is recorded in <run folder>/steps/resolve.json before
the record is emitted; a record of a run that already has it gets the
recorded target back (the same agent branch) and nothing else is done.

${EXIT_STATUS_HELP}

Example:
  echo '{"v":1,"run_id":"20250101-120000-000-abcdefgh","claim":{"inbox":"/srv/prompt-valet/inbox","rel":"widget/main/fix.running.md","path":"/srv/prompt-valet/inbox/widget/main/fix.running.md"}}' | pv-resolve`,
  async run(ctx) {
    const { config } = ctx.config();
    return mapRecords(ctx, 'resolve', async (rec) => {
      claimOf(rec);
      const { runRoot } = runOfRecord(rec, config);
      // A resumed run keeps the target (and so the agent branch) it had.
      const recorded = await readStepDone<TargetSection>(runRoot, 'resolve');
      if (recorded) {
        ctx.log.debug(`${rec.run_id}: resolve completed earlier; re-emitting its target`);
        return { ...rec, target: recorded };
      }
      const target = await resolveRecord(rec, config);
      if (await pathExists(runRoot)) {
        // Listed under the branch's first run before the target is recorded: the branch's runs are found from there.
        if (target.follow_up) await recordFollowUp(config.processed, target.follow_up.root_run, recordRunId(rec));
        await updateRunStatus(runRoot, {
          state: 'resolved',
          step: 'resolve',
          owner: target.owner,
          repo: target.repo,
          branch: target.branch,
          agent_branch: target.agent_branch,
          ...(target.follow_up ? { follow_up_of: target.follow_up.of_run } : {}),
        });
        await markStepDone(runRoot, 'resolve', target);
      }
      return { ...rec, target };
    });
  },
});
