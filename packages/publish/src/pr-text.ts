import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { firstHeading, isErrno, parsePrompt, RUN_FILES, type PvRecord } from '@prompt-valet/core';

/** The pull request's title and body, and the commit message, from the record and the run folder. */
const SUMMARY_MAX_CHARS = 4000;

async function readIfExists(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'EISDIR')) return undefined;
    throw err;
  }
}

function promptStem(name: string): string {
  return name.replace(/\.(prompt|running|done|error)\.md$/, '').replace(/\.md$/, '') || name;
}

/** Front matter `title`, else the prompt's first heading, else its file name. */
export async function prTitle(rec: PvRecord): Promise<string> {
  const fmTitle = rec.target?.front_matter?.title;
  if (typeof fmTitle === 'string' && fmTitle.trim()) return oneLine(fmTitle);
  const runRoot = rec.claim!.run_root;
  const text = (await readIfExists(path.join(runRoot, RUN_FILES.prompt))) ?? (await readIfExists(rec.claim?.path));
  if (text !== undefined) {
    let body = text;
    try {
      body = parsePrompt(text).body;
    } catch {
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

export async function prBody(rec: PvRecord): Promise<string> {
  const runRoot = rec.claim!.run_root;
  const last = (await readIfExists(typeof rec.agent?.last_message === 'string' ? rec.agent.last_message : undefined))
    ?? (await readIfExists(path.join(runRoot, RUN_FILES.lastMessage)));
  let summary = (last ?? '').trim();
  if (summary.length > SUMMARY_MAX_CHARS) summary = `${summary.slice(0, SUMMARY_MAX_CHARS).trimEnd()}\n\n…(trimmed; the full message is in the run folder)`;
  if (!summary) summary = '_The agent left no final message._';
  return [
    summary,
    '',
    '---',
    `Prompt: \`${(rec.claim?.prompt_rel as string | undefined) ?? rec.claim?.rel ?? rec.claim?.prompt_name ?? '?'}\``,
    `Run: \`${rec.run_id}\``,
    '',
    runMarker(rec.run_id!),
    '',
  ].join('\n');
}

export function commitMessage(rec: PvRecord, title: string): string {
  return `Codex: ${rec.claim?.prompt_name ?? title} (run ${rec.run_id})\n\n${title}\n`;
}
