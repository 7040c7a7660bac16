import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  FrontMatterError, pathExists, parsePrompt, promptName, PROMPT_SUFFIX, renameNoClobber, slugify, writeFileAtomic,
  type ValetConfig,
} from '@prompt-valet/core';
import { encodeJobId } from './jobs.js';
import { HttpError } from './http-error.js';
import type { Target } from './targets.js';

/**
 * A submission is a prompt file written into a target folder of the inbox,
 * exactly as an upload through a file share would land: the text goes to a
 * hidden temporary name in the same folder (pv-claim ignores dotfiles), then
 * is linked to its `.prompt.md` name, which fails rather than overwrite.
 */
export interface Submission {
  /** the name the client gave (a file name or a title); made safe here */
  name: string;
  /** the prompt as bytes: front matter and all, written unchanged */
  bytes: Uint8Array;
}

export interface Submitted {
  job_id: string;
  /** the prompt relative to the inbox */
  prompt_rel: string;
  name: string;
  target: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The stem of a safe prompt file name from whatever the client sent: `../../x.prompt.md` → `x`. */
export function safeStem(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const bare = base.replace(/\.(prompt|running|done|error)\.md$/i, '').replace(/\.(md|markdown)$/i, '');
  return slugify(bare, 60);
}

/** Check that the bytes are a prompt: UTF-8 text with readable front matter. Returns the text. */
export function checkPromptBytes(name: string, bytes: Uint8Array): string {
  if (bytes.length === 0) throw new HttpError(400, 'empty_prompt', `${name}: the prompt is empty`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new HttpError(400, 'not_utf8', `${name}: not UTF-8 text`);
  }
  if (text.includes('\0')) throw new HttpError(400, 'not_text', `${name}: contains a NUL byte; a prompt is text`);
  if (text.trim() === '') throw new HttpError(400, 'empty_prompt', `${name}: the prompt is only white space`);
  try {
    parsePrompt(text);
  } catch (err) {
    if (err instanceof FrontMatterError) throw new HttpError(400, 'bad_front_matter', `${name}: ${err.message}`);
    throw err;
  }
  return text;
}


/**
 * Is `stem` in use in this folder, in any state, or settled in finished/?
 * A fresh stem keeps a job's runs apart from older prompts of the same name.
 */
async function stemInUse(folder: string, finishedFolder: string, stem: string): Promise<boolean> {
  for (const state of Object.keys(PROMPT_SUFFIX) as (keyof typeof PROMPT_SUFFIX)[]) {
    if (await pathExists(path.join(folder, promptName(stem, state)))) return true;
  }
  for (const state of ['done', 'error'] as const) {
    if (await pathExists(path.join(finishedFolder, promptName(stem, state)))) return true;
  }
  return false;
}

export async function submitPrompt(config: ValetConfig, target: Target, sub: Submission, now = new Date()): Promise<Submitted> {
  checkPromptBytes(sub.name, sub.bytes);
  // target.id was read from the inbox listing, never taken from the request.
  const folder = path.join(config.inbox, target.id);
  const finishedFolder = path.join(config.finished, target.id);
  const stem = safeStem(sub.name);
  const tmp = path.join(folder, `.${stem}.web-${randomBytes(6).toString('hex')}.PARTIAL`);
  await writeFileAtomic(tmp, sub.bytes, { mode: 0o644 });
  try {
    for (let n = 1; n < 1000; n++) {
      const candidate = n === 1 ? stem : `${stem}-${n}`;
      if (await stemInUse(folder, finishedFolder, candidate)) continue;
      const dest = path.join(folder, promptName(candidate, 'pending'));
      const { ino } = await fsp.stat(tmp);
      if (!(await renameNoClobber(tmp, dest))) continue;
      const promptRel = path.relative(config.inbox, dest);
      return { job_id: encodeJobId({ rel: promptRel, ino, at: now.getTime() }), prompt_rel: promptRel, name: path.basename(dest), target: target.id };
    }
    throw new HttpError(409, 'no_free_name', `no free name for ${stem} in ${target.id}`);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
