import * as path from 'node:path';
import { StepError, writeFileAtomic, type Logger } from '@prompt-valet/core';
import { findOpenPr, runGh, type GhOptions } from './gh.js';
import { runMarker } from './pr-text.js';

/**
 * A follow-up's pull request already exists (the earlier run opened it on
 * the same agent branch): it gets the new commits by the push, and the
 * summary as a comment instead of a second PR. The comment carries the
 * run's marker (`<!-- prompt-valet run_id=… -->`) and is looked for before
 * one is posted, so a follow-up resumed after a crash between the post and
 * publish.json never comments twice.
 */
export const COMMENT_FILE = 'pr-comment.md';

/** The PR's number from its URL (`https://host/owner/repo/pull/7`): gh cannot parse a URL whose host has a port. */
export function prNumberOf(prUrl: string): string {
  const m = /\/pull\/(\d+)\/?$/.exec(prUrl);
  if (!m) throw new StepError('gh_failed', `${prUrl} is not the URL of a pull request (…/pull/<number>)`);
  return m[1]!;
}

/** The URL of this run's comment on the PR, if it was posted already. */
async function findRunComment(gh: GhOptions, repoArg: string, number: string, runId: string): Promise<string | undefined> {
  const out = await runGh(gh, ['pr', 'view', number, `--repo=${repoArg}`, '--json=comments']);
  const comments = (JSON.parse(out || '{}') as { comments?: { body?: unknown; url?: unknown }[] }).comments ?? [];
  const mine = comments.find((c) => typeof c.body === 'string' && c.body.includes(runMarker(runId)));
  return mine ? String(mine.url ?? '') : undefined;
}

export interface FollowUpComment {
  runId: string;
  runRoot: string;
  prUrl: string;
  title: string;
  /** the PR body this run would have had: its summary, prompt and run, with the marker */
  body: string;
}

/** Comment on the follow-up's PR once; returns the comment's URL. */
export async function commentOnce(gh: GhOptions, repoArg: string, c: FollowUpComment, log: Logger): Promise<string> {
  const number = prNumberOf(c.prUrl);
  const earlier = await findRunComment(gh, repoArg, number, c.runId);
  if (earlier !== undefined) {
    log.info(`run ${c.runId}: ${c.prUrl} already has this run's comment${earlier ? ` (${earlier})` : ''}; not posted again`);
    return earlier;
  }
  const file = path.join(c.runRoot, COMMENT_FILE);
  await writeFileAtomic(file, `**Follow-up:** ${c.title}\n\n${c.body}`);
  const out = await runGh(gh, ['pr', 'comment', number, `--repo=${repoArg}`, `--body-file=${file}`]);
  const url = out.split('\n').map((l) => l.trim()).reverse().find((l) => /^https?:\/\//.test(l)) ?? '';
  log.info(`run ${c.runId}: commented on ${c.prUrl}${url ? ` (${url})` : ''}`);
  return url;
}

/** gh's options and `--repo` for the run's repository. */
export interface GhTarget {
  opts: GhOptions;
  repoArg: string;
}

/**
 * A follow-up whose agent changed nothing still answered: its summary goes
 * on the branch's open PR, if there is one. Returns what publish.json records.
 */
export async function commentOnOpenPr(gh: GhTarget, c: Omit<FollowUpComment, 'prUrl'>, agentBranch: string, log: Logger):
  Promise<{ pr_url: string; comment_url?: string } | undefined> {
  const prUrl = await findOpenPr(gh.opts, gh.repoArg, agentBranch);
  if (!prUrl) return undefined;
  const url = await commentOnce(gh.opts, gh.repoArg, { ...c, prUrl }, log);
  return url ? { pr_url: prUrl, comment_url: url } : { pr_url: prUrl };
}
