import * as path from 'node:path';
import { defineTool, EXIT_STATUS_HELP, mapRecords, updateRunStatus } from '@prompt-valet/core';
import { resolveRecord } from './resolve.js';

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
  "target": {"owner","repo","branch","repo_dir","clone_url","agent_branch","front_matter","subdirs"}
repo_dir is repos_root/<owner>/<repo>; clone_url follows watcher.git_protocol
(https://host/o/r.git, ssh git@host:o/r.git, git://host/o/r.git,
file://<folder>/o/r.git); agent_branch is
<watcher.agent_branch_prefix><slug of the prompt name>-<run id>. The prompt's
YAML front matter (title, draft, labels, model, sandbox, timeout) is
checked against the operator's limits and carried as front_matter: it may
narrow them (a stricter sandbox, a shorter timeout, a model from
watcher.allowed_models, draft: true, more labels), never widen them. A path
that does not resolve (too shallow, a hostile name), front matter that is
unreadable, unknown or wider than the config (bad_front_matter), or a prompt
larger than limits.max_prompt_bytes (prompt_too_large, not read) gives the
record a non-retryable error.

${EXIT_STATUS_HELP}

Example:
  echo '{"v":1,"run_id":"20250101-120000-000-abcdefgh","claim":{"inbox":"/srv/prompt-valet/inbox","rel":"widget/main/fix.running.md","path":"/srv/prompt-valet/inbox/widget/main/fix.running.md"}}' | pv-resolve`,
  async run(ctx) {
    const { config } = ctx.config();
    return mapRecords(ctx, 'resolve', async (rec) => {
      const target = await resolveRecord(rec, config);
      // Status goes only into a run folder of this valet's processed/.
      if (rec.claim?.run_root && path.dirname(path.resolve(rec.claim.run_root)) === path.resolve(config.processed)) {
        await updateRunStatus(rec.claim.run_root, {
          state: 'resolved',
          step: 'resolve',
          owner: target.owner,
          repo: target.repo,
          branch: target.branch,
          agent_branch: target.agent_branch,
        });
      }
      return { ...rec, target };
    });
  },
});
