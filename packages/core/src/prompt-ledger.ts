import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createFileAtomic, isErrno, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from './files.js';
import { asPermissionError, moveToFreeName } from './move.js';
import { resolveInside } from './names.js';
import { parsePromptName, promptName, PROMPT_SUFFIX } from './prompt-names.js';
import { SCHEMA_VERSION, type RecordError } from './records.js';
import { PvError } from './errors.js';

/**
 * The valet's per-prompt bookkeeping, kept out of the operator's inbox under
 * `processed/.ledger/` (docs/lifecycle.md):
 *
 *   claims/<run id>.json            one per claim: which lock holds `x.running.md`
 *   locks/<lock id>.lock            the claim locks (core claim-lock.ts)
 *   pending/<sha256 of rel>.json    retry entries: a prompt that went back to pending: attempts
 *                                   so far, backoff, last error, the run to resume
 *   problems/<sha256>.txt           permission problems already reported
 *
 * Every file here is written to a temporary name and renamed into place (a
 * claim record is linked: created only if its run has none, createClaimRecord).
 * A claim record is written BEFORE the move that makes `x.running.md`, so a
 * running file without a record only exists when something outside the
 * valet made it (see ORPHAN_GRACE_SECONDS). Entries carry the inode of the
 * prompt file they describe: a new file dropped under an old name never
 * inherits another file's attempts or backoff.
 */
export const LEDGER_DIR = '.ledger';

/** The ledger's folders ('' is the ledger itself): claims, claim locks, retry entries, reported problems. */
export const LEDGER_SUBDIRS = ['', 'claims', 'locks', 'pending', 'problems'] as const;

/** A running file with no claim record is left alone this long (by its ctime) before it counts as orphaned. */
export const ORPHAN_GRACE_SECONDS = 60;

export interface ClaimRecord {
  v: number;
  run_id: string;
  /** the running file, relative to the inbox (`repo/main/x.running.md`) */
  rel: string;
  /** the prompt's pending name, relative to the inbox (`repo/main/x.prompt.md`) */
  prompt_rel: string;
  /** inode of the prompt file (the same inode under both names) */
  ino: number;
  /** how to tell whether the claim is held; a record without it counts as dead */
  liveness?: Liveness;
  attempt: number;
  claimed_at: string;
  run_root: string;
  /** how many times this run was resumed (0 for its first claim) */
  resumed?: number;
}

/** Who holds a claim (docs/lifecycle.md, "Liveness kinds"). */
export type Liveness = { kind: 'local'; lock: string } | { kind: 'dispatched'; stream: string; seq: number };

export interface RetryEntry {
  v: number;
  prompt_rel: string;
  ino: number;
  /** attempts that counted so far; the next claim is attempt `attempts + 1` */
  attempts: number;
  /** ISO time before which the prompt is not claimed (backoff) */
  not_before?: string;
  last_error?: RecordError;
  last_run_id?: string;
  /** the run the next claim continues (docs/lifecycle.md, "A run resumes") */
  resume_run_id?: string;
  updated_at: string;
}

export interface LedgerPaths {
  root: string;
  claims: string;
  /** retry entries (the folder keeps its first name, `pending`) */
  retryEntries: string;
}

export function ledgerPaths(processed: string): LedgerPaths {
  const root = path.join(processed, LEDGER_DIR);
  return { root, claims: path.join(root, 'claims'), retryEntries: path.join(root, 'pending') };
}

/** File name of a prompt's retry entry: a hash, because a relative path can be longer than a file name may be. */
export function retryEntryKey(promptRel: string): string {
  return createHash('sha256').update(promptRel).digest('hex');
}

function retryEntryFile(processed: string, promptRel: string): string {
  return path.join(ledgerPaths(processed).retryEntries, `${retryEntryKey(promptRel)}.json`);
}

// ---- claim records ---------------------------------------------------------

/**
 * Create the claim record of a new claim (`claims/<run id>.json`) only if the
 * run has none; returns its file, or undefined when another claim of the run
 * has a record. The claims of one run (each try of a resumed run) share that
 * name, so the record is the run's mutex: of two claimers resuming one run
 * exactly one creates it, and while it stands nobody else writes or removes
 * it. A holder that hands the run on (pv-settle's retry, recovery) puts the
 * prompt back to pending before it removes its record; a claimer that looks
 * in that instant finds the record and leaves the prompt for the next look
 * (docs/lifecycle.md, "Handing a run on").
 */
export async function createClaimRecord(processed: string, rec: ClaimRecord): Promise<string | undefined> {
  const dir = ledgerPaths(processed).claims;
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${rec.run_id}.json`);
  return (await createFileAtomic(file, JSON.stringify(rec, null, 2) + '\n')) ? file : undefined;
}

/** Rewrite the record of a claim this process holds (pv-queue send: its liveness becomes dispatched); returns its file. */
export async function writeClaimRecord(processed: string, rec: ClaimRecord): Promise<string> {
  const dir = ledgerPaths(processed).claims;
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${rec.run_id}.json`);
  await writeJsonAtomic(file, rec);
  return file;
}

/**
 * Remove a claim record; false when it was already gone. Only its own claim
 * removes it (the claimer that lost the move, pv-settle, or recovery holding
 * its lock): no other claim of the run can have created one meanwhile.
 */
export async function removeClaimRecord(file: string): Promise<boolean> {
  try {
    await fsp.unlink(file);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

export interface ClaimRecordFile {
  file: string;
  record: ClaimRecord;
}

/**
 * Every `*.json` in `dir` that parses and passes `valid`, in name order. A
 * missing folder is empty; a file that cannot be parsed (torn by hand) is
 * skipped: the valet itself only renames whole files into place.
 */
async function readJsonFolder<T>(dir: string, valid: (v: T) => boolean): Promise<{ file: string; value: T }[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const out: { file: string; value: T }[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const file = path.join(dir, name);
    try {
      const value = await readJsonIfExists<T>(file);
      if (value && valid(value)) out.push({ file, value });
    } catch (err) {
      // Torn by hand: skipped. A file the valet may not read is an operator's problem to fix, said in one line.
      if (err instanceof SyntaxError) continue;
      throw asPermissionError(err, file, 'read');
    }
  }
  return out;
}

/** Every claim record. */
export async function listClaimRecords(processed: string): Promise<ClaimRecordFile[]> {
  const found = await readJsonFolder<ClaimRecord>(ledgerPaths(processed).claims, (r) => typeof r.rel === 'string' && typeof r.ino === 'number');
  return found.map(({ file, value }) => ({ file, record: value }));
}

/** The claim record file of a run. */
export function claimRecordFile(processed: string, runId: string): string {
  return path.join(ledgerPaths(processed).claims, `${runId}.json`);
}

// ---- retry entries -------------------------------------------------------

/** The retry entry of the prompt at `promptRel`, only if it describes this very file (inode `ino`). */
export async function readRetryEntry(processed: string, promptRel: string, ino?: number): Promise<RetryEntry | undefined> {
  let entry: RetryEntry | undefined;
  const file = retryEntryFile(processed, promptRel);
  try {
    entry = await readJsonIfExists<RetryEntry>(file);
  } catch (err) {
    // An entry torn by hand counts as none. One the valet may not read must
    // surface: taking it as none would reset the attempt count and the backoff.
    if (err instanceof SyntaxError) return undefined;
    throw asPermissionError(err, file, 'read');
  }
  if (!entry || entry.prompt_rel !== promptRel) return undefined;
  if (ino !== undefined && entry.ino !== ino) return undefined;
  return entry;
}

export async function writeRetryEntry(processed: string, entry: RetryEntry): Promise<void> {
  await fsp.mkdir(ledgerPaths(processed).retryEntries, { recursive: true });
  await writeJsonAtomic(retryEntryFile(processed, entry.prompt_rel), entry);
}

export async function removeRetryEntry(processed: string, promptRel: string): Promise<void> {
  await fsp.rm(retryEntryFile(processed, promptRel), { force: true });
}

/** Every retry entry (for pv-status and pv-web). */
export async function listRetryEntries(processed: string): Promise<RetryEntry[]> {
  return (await readJsonFolder<RetryEntry>(ledgerPaths(processed).retryEntries, () => true)).map(({ value }) => value);
}

/** Hashes of the prompts that have a retry entry: one readdir instead of one open per candidate. */
export async function retryEntryKeys(processed: string): Promise<Set<string>> {
  try {
    const names = await fsp.readdir(ledgerPaths(processed).retryEntries);
    return new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return new Set();
    throw err;
  }
}

/** Backoff before attempt `attempt + 1`: base, 2×base, 4×base, … */
export function backoffSeconds(attemptsSoFar: number, baseSeconds: number): number {
  return baseSeconds * 2 ** Math.max(0, attemptsSoFar - 1);
}

// ---- transitions of the prompt file ---------------------------------------

/** `repo/main/x.running.md` → `repo/main/x.prompt.md` (the same folder, the other state). */
export function siblingName(rel: string, state: keyof typeof PROMPT_SUFFIX): string {
  const parsed = parsePromptName(path.basename(rel));
  if (!parsed) throw new Error(`not a prompt file name: ${rel}`);
  const dir = path.dirname(rel);
  const name = promptName(parsed.stem, state);
  return dir === '.' ? name : path.join(dir, name);
}

export interface ReleaseOptions {
  inbox: string;
  processed: string;
  /** absolute path of `x.running.md` */
  runningPath: string;
  ino: number;
  /** attempts that count so far (the next claim is attempts + 1) */
  attempts: number;
  notBefore?: Date;
  lastError?: RecordError;
  runId?: string;
  /** the run the next claim continues */
  resumeRunId?: string;
  now?: Date;
}

/**
 * Put a claimed prompt back to pending: `x.running.md` → `x.prompt.md`, or
 * `x.2.prompt.md`, … when the operator dropped a new `x.prompt.md` meanwhile
 * (never overwritten). The retry entry is written before each name is
 * tried, so no claimer ever sees the prompt without its attempts, backoff
 * and run to resume. Returns the new absolute path.
 *
 * A caller holding a claim removes its record only after this: until then
 * a claimer finds the run's record and leaves the prompt for its next look
 * (docs/lifecycle.md, "Handing a run on").
 */
export async function releaseToPending(opts: ReleaseOptions): Promise<string> {
  const now = opts.now ?? new Date();
  const runningRel = path.relative(opts.inbox, opts.runningPath);
  const parsed = parsePromptName(path.basename(runningRel));
  if (!parsed) throw new Error(`not a prompt file name: ${runningRel}`);
  const dest = await moveToFreeName(opts.runningPath, path.dirname(opts.runningPath), parsed.stem, PROMPT_SUFFIX.pending, async (candidate) => {
    // A name taken in the instant between the write and the move: the entry
    // names our inode, so the newcomer is not affected by it.
    const entry: RetryEntry = {
      v: SCHEMA_VERSION,
      prompt_rel: path.relative(opts.inbox, candidate),
      ino: opts.ino,
      attempts: opts.attempts,
      updated_at: now.toISOString(),
    };
    if (opts.notBefore) entry.not_before = opts.notBefore.toISOString();
    if (opts.lastError) entry.last_error = opts.lastError;
    if (opts.runId) entry.last_run_id = opts.runId;
    if (opts.resumeRunId) entry.resume_run_id = opts.resumeRunId;
    await writeRetryEntry(opts.processed, entry);
  });
  if (!dest) throw new Error(`${runningRel} vanished while going back to pending`);
  return dest;
}

export interface SettleFileOptions {
  inbox: string;
  finished: string;
  runningPath: string;
  state: 'done' | 'error';
  /** for `error`: the reason, written beside the settled prompt as `<name>.txt` */
  reason?: string;
}

export interface SettledFile {
  /** absolute path in `finished/` */
  path: string;
  /** the reason file beside it, for `error` */
  reason_path?: string;
}

/**
 * Settle a claimed prompt: `x.running.md` → `x.done.md` / `x.error.md` in
 * its folder, then into `finished/<same relative folder>/`, under a unique
 * name when taken. For an error the reason goes beside it as
 * `x.error.txt` (the prompt file itself is never modified).
 */
export async function settlePromptFile(opts: SettleFileOptions): Promise<SettledFile> {
  const runningRel = path.relative(opts.inbox, opts.runningPath);
  const parsed = parsePromptName(path.basename(runningRel));
  if (!parsed) throw new Error(`not a prompt file name: ${runningRel}`);
  const suffix = PROMPT_SUFFIX[opts.state];
  const inPlace = await moveToFreeName(opts.runningPath, path.dirname(opts.runningPath), parsed.stem, suffix);
  if (!inPlace) throw new Error(`${runningRel} vanished while being settled`);
  const final = await moveSettledToFinished(inPlace, path.join(opts.finished, path.dirname(runningRel)));
  const out: SettledFile = { path: final };
  if (opts.state === 'error' && opts.reason !== undefined) {
    out.reason_path = await writeReasonBeside(final, opts.reason);
  }
  return out;
}

/**
 * Move a settled `x.done.md` / `x.error.md` (still in the inbox) into its
 * folder under `finished/`, under a free name. Also used by recovery to
 * finish a settle that died between its two moves.
 */
export async function moveSettledToFinished(src: string, destDir: string): Promise<string> {
  const parsed = parsePromptName(path.basename(src));
  if (!parsed || (parsed.state !== 'done' && parsed.state !== 'error')) throw new Error(`not a settled prompt: ${src}`);
  const final = await moveToFreeName(src, destDir, parsed.stem, PROMPT_SUFFIX[parsed.state]);
  if (!final) throw new Error(`${src} vanished while moving into ${destDir}`);
  return final;
}

/** `finished/…/x.2.error.md` → `finished/…/x.2.error.txt`, never overwriting (a free name when taken). */
export async function writeReasonBeside(final: string, text: string): Promise<string> {
  const base = path.basename(final).replace(/\.md$/, '');
  const dir = path.dirname(final);
  const tmp = path.join(dir, `.${base}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFileAtomic(tmp, text.endsWith('\n') ? text : `${text}\n`);
  try {
    const dest = await moveToFreeName(tmp, dir, base, '.txt');
    if (!dest) throw new Error(`the reason for ${final} vanished before it was named`);
    return dest;
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

export interface RequeueOptions {
  inbox: string;
  finished: string;
  processed: string;
  /** the settled prompt, relative to `finished/` (`repo/main/x.error.md`) */
  finishedRel: string;
}

/**
 * Put a settled prompt (`finished/…/x.error.md` or `x.done.md`) back into
 * the inbox as `x.prompt.md` in its old folder, for a fresh run (attempts
 * start over). Never overwrites: a taken name gets `x.2.prompt.md`, … .
 * Refuses anything that is not a regular settled prompt file inside
 * `finished/`. Returns the new absolute path in the inbox.
 */
export async function requeuePrompt(opts: RequeueOptions): Promise<string> {
  const parsed = parsePromptName(path.basename(opts.finishedRel));
  if (!parsed || (parsed.state !== 'error' && parsed.state !== 'done')) {
    throw new RequeueError(`${opts.finishedRel} is not a settled prompt (x.error.md or x.done.md)`);
  }
  const src = await resolveInside(opts.finished, opts.finishedRel);
  const st = await fsp.lstat(src).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) throw new RequeueError(`${opts.finishedRel} does not exist in ${opts.finished}`);
    throw err;
  });
  if (!st.isFile()) throw new RequeueError(`${opts.finishedRel} is not a regular file`);
  const relDir = path.dirname(opts.finishedRel);
  const destDir = relDir === '.' ? opts.inbox : await resolveInside(opts.inbox, relDir);
  // The stem of a unique settled name (`x.2`) is kept: it is still unique.
  // A fresh run: no retry entry of an earlier file may apply to it.
  const dest = await moveToFreeName(src, destDir, parsed.stem, PROMPT_SUFFIX.pending, (candidate) =>
    removeRetryEntry(opts.processed, path.relative(opts.inbox, candidate)),
  );
  if (!dest) throw new RequeueError(`${opts.finishedRel} vanished while being requeued`);
  return dest;
}

export class RequeueError extends PvError {
  constructor(message: string) {
    super('requeue_refused', message);
  }
}

// ---- problems reported once -------------------------------------------------

/**
 * Record a permission problem as reported: true the first time this exact
 * line is seen (log it), false after (stay quiet). The line names the path,
 * its owner and mode, so a changed problem is reported again. Exclusive
 * create: of racing claimers exactly one reports it.
 */
export async function firstReportOf(processed: string, line: string): Promise<boolean> {
  const dir = path.join(processed, LEDGER_DIR, 'problems');
  try {
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, `${createHash('sha256').update(line).digest('hex')}.txt`), `${line}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    // Cannot even write the ledger: better a repeated line than none.
    return true;
  }
}
