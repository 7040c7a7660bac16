import * as path from 'node:path';
import {
  firstHeading, FrontMatterError, isErrno, type IncompleteReason, type Logger, parsePrompt, type PvRecord, readSmallFileNoFollow, runFile,
} from '@prompt-valet/core';
import { incompleteNote } from './incomplete-text.js';

/**
 * The pull request's title and body, and the commit message. Files are read
 * from the run folder by their fixed names (never a path a record names),
 * never through a symlink, and only so much of them.
 */
const SUMMARY_MAX_CHARS = 4000;
/** enough for the summary and a heading; a larger file is cut, not read whole */
const READ_MAX_BYTES = 64 * 1024;

/** The git trailer that marks a commit as this run's, wherever the run resumes. */
export const RUN_TRAILER = 'Prompt-Valet-Run';

export interface PrTextSources {
  runId: string;
  runRoot: string;
  /** `inbox/<claim.rel>`, derived: the prompt if the run folder has no copy */
  runningFile?: string;
  log: Logger;
  /** why the agent was stopped, for a stopped run's draft PR */
  incomplete?: IncompleteReason;
}

/** A file's text, or undefined when it is missing; a symlink or a non-file is refused (logged), not followed. */
async function readRunFile(file: string | undefined, log: Logger): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return await readSmallFileNoFollow(file, READ_MAX_BYTES);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    if (isErrno(err, 'ELOOP') || isErrno(err, 'EISDIR')) {
      log.warn(`${file} is a symbolic link or not a regular file: not read`);
      return undefined;
    }
    throw err;
  }
}

function promptStem(name: string): string {
  return name.replace(/\.(prompt|running|done|error)\.md$/, '').replace(/\.md$/, '') || name;
}

/** Front matter `title`, else the prompt's first heading, else its file name. */
export async function prTitle(rec: PvRecord, src: PrTextSources): Promise<string> {
  const fmTitle = rec.target?.front_matter?.title;
  if (typeof fmTitle === 'string' && fmTitle.trim()) return oneLine(fmTitle);
  const text = (await readRunFile(runFile(src.runRoot, 'prompt'), src.log)) ?? (await readRunFile(src.runningFile, src.log));
  if (text !== undefined) {
    let body = text;
    try {
      body = parsePrompt(text).body;
    } catch (err) {
      if (!(err instanceof FrontMatterError)) throw err;
      // bad front matter was pv-resolve's to report; the heading may still be there
    }
    const heading = firstHeading(body);
    if (heading) return oneLine(heading);
  }
  return promptStem(rec.claim?.prompt_name ?? path.basename(rec.claim?.rel ?? 'prompt'));
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 250);
}

/** The marker that ties a PR to its run, invisible on GitHub. */
export function runMarker(runId: string): string {
  return `<!-- prompt-valet run_id=${runId} -->`;
}

export async function prBody(rec: PvRecord, src: PrTextSources): Promise<string> {
  const last = await readRunFile(runFile(src.runRoot, 'lastMessage'), src.log);
  let summary = (last ?? '').trim();
  if (summary.length > SUMMARY_MAX_CHARS) summary = `${summary.slice(0, SUMMARY_MAX_CHARS).trimEnd()}\n\n…(trimmed; the full message is in the run folder)`;
  if (!summary) summary = '_The agent left no final message._';
  return [
    ...(src.incomplete ? [incompleteNote(src.incomplete), ''] : []),
    summary,
    '',
    '---',
    `Prompt: \`${rec.claim?.prompt_rel ?? rec.claim?.rel ?? '?'}\``,
    `Run: \`${src.runId}\``,
    '',
    runMarker(src.runId),
    '',
  ].join('\n');
}

export function commitMessage(rec: PvRecord, runId: string, title: string): string {
  const name = typeof rec.claim?.prompt_name === 'string' ? oneLine(rec.claim.prompt_name) : title;
  return `Codex: ${name} (run ${runId})\n\n${title}\n\n${RUN_TRAILER}: ${runId}\n`;
}
