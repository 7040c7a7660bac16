import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { newRunId, RUN_FILES, type FrontMatter, type PvRecord } from '@prompt-valet/core';

/**
 * A record as pv-resolve hands it to pv-clone, made by hand, with its run
 * folder (holding a copy of the prompt) under `processed`.
 */
export interface RunRecordSpec {
  processed: string;
  reposRoot: string;
  cloneUrl: string;
  owner?: string;
  repo?: string;
  branch?: string;
  runId?: string;
  /** the prompt's text (default: a heading and a line) */
  prompt?: string;
  promptName?: string;
  front_matter?: FrontMatter;
  agentBranch?: string;
}

export async function makeRunRecord(spec: RunRecordSpec): Promise<PvRecord> {
  const runId = spec.runId ?? newRunId();
  const owner = spec.owner ?? 'acme';
  const repo = spec.repo ?? 'widget';
  const branch = spec.branch ?? 'main';
  const promptName = spec.promptName ?? 'fix-login.prompt.md';
  const runRoot = path.join(spec.processed, runId);
  await fsp.mkdir(runRoot, { recursive: true });
  const prompt = spec.prompt ?? '# Fix the login page\n\nMake the login button work.\n';
  await fsp.writeFile(path.join(runRoot, RUN_FILES.prompt), prompt);
  const rel = `${repo}/${branch.split('/').join('~')}/${promptName.replace(/\.prompt\.md$/, '.running.md')}`;
  return {
    v: 1,
    run_id: runId,
    claim: {
      inbox: path.join(path.dirname(spec.processed), 'inbox'),
      rel,
      path: path.join(path.dirname(spec.processed), 'inbox', rel),
      prompt_name: promptName,
      prompt_rel: `${repo}/${branch.split('/').join('~')}/${promptName}`,
      run_root: runRoot,
      attempt: 1,
      claimed_at: new Date().toISOString(),
    },
    target: {
      owner,
      repo,
      branch,
      repo_dir: path.join(spec.reposRoot, owner, repo),
      clone_url: spec.cloneUrl,
      agent_branch: spec.agentBranch ?? `codex/${promptName.replace(/\.prompt\.md$/, '')}-${runId}`,
      front_matter: spec.front_matter ?? {},
      subdirs: [],
    },
  };
}
