import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { FastifyRequest } from 'fastify';
import {
  expectErrno,
  FrontMatterError, moveToFreeName, pathExists, parsePrompt, promptName, PROMPT_SUFFIX, PvError, slugify, writeFileAtomic,
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

/**
 * Check that the bytes are a prompt pv-resolve will accept: within
 * limits.max_prompt_bytes, UTF-8 text, front matter within the operator's
 * limits (the same core check). Refused here, the client hears why at once
 * instead of finding an error in finished/ later. Returns the text.
 */
export function checkPromptBytes(name: string, bytes: Uint8Array, config: ValetConfig): string {
  if (bytes.length === 0) throw new HttpError(400, 'empty_prompt', `${name}: the prompt is empty`);
  const maxPrompt = config.limits.max_prompt_bytes;
  if (bytes.length > maxPrompt) throw new HttpError(413, 'too_large', `${name}: larger than limits.max_prompt_bytes (${maxPrompt})`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (err) {
    expectErrno(err, 'ERR_ENCODING_INVALID_ENCODED_DATA');
    throw new HttpError(400, 'not_utf8', `${name}: not UTF-8 text`);
  }
  if (text.includes('\0')) throw new HttpError(400, 'not_text', `${name}: contains a NUL byte; a prompt is text`);
  if (text.trim() === '') throw new HttpError(400, 'empty_prompt', `${name}: the prompt is only white space`);
  try {
    parsePrompt(text, config.watcher);
  } catch (err) {
    if (err instanceof FrontMatterError) throw new HttpError(400, err.code, `${name}: ${err.message}`, err);
    throw err;
  }
  return text;
}

/**
 * The files of a multipart upload, every one checked before any is written:
 * an upload lands whole or not at all. A body the multipart parser cannot
 * read (no boundary, a torn part) is the client's mistake: 400, not 500.
 */
export async function readUpload(req: FastifyRequest, config: ValetConfig): Promise<{ targetId: unknown; subs: Submission[] }> {
  const max = config.web.max_upload_bytes;
  let targetId: unknown;
  const subs: Submission[] = [];
  try {
    for await (const part of req.parts()) {
      if (part.type === 'field') {
        if (part.fieldname === 'target') targetId = part.value;
        continue;
      }
      const name = part.filename ?? '';
      if (!/\.(md|markdown)$/i.test(name)) {
        throw new HttpError(415, 'not_markdown', `${JSON.stringify(name.slice(0, 200))}: only .md files are accepted`);
      }
      const bytes = await part.toBuffer();
      if (bytes.length > max) throw new HttpError(413, 'too_large', `${name}: larger than web.max_upload_bytes (${max})`);
      subs.push({ name, bytes });
    }
  } catch (err) {
    // HttpErrors are ours; the parser's own limits carry a 4xx statusCode (413 for a file too large).
    if (err instanceof HttpError || typeof (err as { statusCode?: unknown }).statusCode === 'number') throw err;
    throw new HttpError(400, 'bad_multipart', `the multipart/form-data body cannot be read: ${(err as Error).message}`);
  }
  if (subs.length === 0) throw new HttpError(400, 'no_files', 'no .md file in the upload (field "file")');
  for (const s of subs) checkPromptBytes(s.name, s.bytes, config);
  return { targetId, subs };
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
  checkPromptBytes(sub.name, sub.bytes, config);
  // target.id was read from the inbox listing, never taken from the request.
  const folder = path.join(config.inbox, target.id);
  const finishedFolder = path.join(config.finished, target.id);
  const stem = safeStem(sub.name);
  const tmp = path.join(folder, `.${stem}.web-${randomBytes(6).toString('hex')}.PARTIAL`);
  await writeFileAtomic(tmp, sub.bytes, { mode: 0o644 });
  try {
    // The inode is the job's: read it before each try, as pv-claim may rename the prompt the moment it lands.
    let ino = 0;
    const dest = await moveToFreeName(tmp, folder, stem, PROMPT_SUFFIX.pending, async () => {
      ino = (await fsp.stat(tmp)).ino;
    }, { stemTaken: (candidate) => stemInUse(folder, finishedFolder, candidate) }).catch((err: unknown) => {
      if (err instanceof PvError && err.code === 'no_free_name') throw new HttpError(409, err.code, `no free name for ${stem} in ${target.id}`, err);
      throw err;
    });
    if (!dest) throw new Error(`${tmp} vanished before it was named`);
    const promptRel = path.relative(config.inbox, dest);
    return { job_id: encodeJobId({ rel: promptRel, ino, at: now.getTime() }), prompt_rel: promptRel, name: path.basename(dest), target: target.id };
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
