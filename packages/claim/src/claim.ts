import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  claimRecordPath,
  createClaimRecord,
  describeOwner,
  firstReportOf,
  inboxPromptAt,
  FsPermissionError,
  isCompletePrompt,
  isPermissionError,
  isRunId,
  listInboxPrompts,
  moveNoReplace,
  newRunId,
  retryEntryKey,
  retryEntryKeys,
  readRetryEntry,
  readRunStatusOrNone,
  recordError,
  releaseToPending,
  removeClaimRecord,
  removeRetryEntry,
  runFile,
  runRootFor,
  SCHEMA_VERSION,
  serviceUser,
  siblingName,
  updateRunStatus,
  userName,
  writeFileAtomic,
  type ClaimRecord,
  type ClaimSection,
  type InboxPrompt,
  type Logger,
  type RetryEntry,
  type PvRecord,
} from '@prompt-valet/core';

/**
 * Claiming one prompt (docs/lifecycle.md). The order is what makes a crash
 * at any instant recoverable:
 *
 *   1. write the claim record (lock id, inode) into processed/.ledger/claims
 *   2. mv -n x.prompt.md x.running.md   renameat2(RENAME_NOREPLACE): of any
 *                                       number of claimers exactly one moves
 *                                       it; needs the folder writable, not
 *                                       the file owned
 *   3. drop the pending entry, make (or reuse) the run folder, copy the prompt
 *
 * The claim is held by the lock this process inherited: a crash after 1
 * leaves a record for a file still pending (recovery drops it), after 2 a
 * running file whose lock is free (recovery resumes it).
 */
export interface ClaimOptions {
  inbox: string;
  processed: string;
  /** the inherited claim lock's id */
  lockId: string;
  now?: () => Date;
}

export type ClaimOutcome =
  | { claimed: true; record: PvRecord }
  /** lost the race, or the file went away, or it waits for its backoff */
  | { claimed: false; why: 'taken' | 'gone' | 'backoff' };

/** The run a retry entry hands on, if its folder exists and was not settled. */
async function resumableRun(processed: string, retry: RetryEntry | undefined): Promise<string | undefined> {
  const id = retry?.resume_run_id;
  if (!id || !isRunId(id)) return undefined;
  const status = await readRunStatusOrNone(runRootFor({ processed }, id));
  if (!status || status.state === 'done' || status.state === 'error' || status.final_path) return undefined;
  return id;
}

export async function claimPrompt(c: InboxPrompt, retry: RetryEntry | undefined, opts: ClaimOptions): Promise<ClaimOutcome> {
  const now = opts.now ?? (() => new Date());
  if (retry?.not_before && Date.parse(retry.not_before) > now().getTime()) return { claimed: false, why: 'backoff' };
  const resumeId = await resumableRun(opts.processed, retry);
  const runId = resumeId ?? newRunId(now());
  const runRoot = runRootFor({ processed: opts.processed }, runId);
  const prior = resumeId ? await readRunStatusOrNone(runRoot) : undefined;
  const resumed = resumeId ? (typeof prior?.resumed === 'number' ? prior.resumed : 0) + 1 : 0;
  const runningRel = siblingName(c.rel, 'running');
  const runningPath = path.join(opts.inbox, runningRel);
  const attempt = (retry?.attempts ?? 0) + 1;
  const claimedAt = now().toISOString();
  const liveness = { kind: 'local' as const, lock: opts.lockId };
  const rec: ClaimRecord = {
    v: SCHEMA_VERSION,
    run_id: runId,
    rel: runningRel,
    prompt_rel: c.rel,
    ino: c.ino,
    liveness,
    attempt,
    claimed_at: claimedAt,
    run_root: runRoot,
    resumed,
  };
  const ledgerFile = await createClaimRecord(opts.processed, rec);
  // The run has a claim already: another claimer resuming it, or the holder that
  // put it back to pending has not yet removed its record. The next look takes it.
  if (!ledgerFile) return { claimed: false, why: 'taken' };

  let outcome;
  try {
    outcome = await moveNoReplace(c.path, runningPath);
  } catch (err) {
    await removeClaimRecord(ledgerFile);
    throw err;
  }
  if (outcome !== 'moved') {
    await removeClaimRecord(ledgerFile);
    return { claimed: false, why: outcome };
  }
  // Replaced between the walk's lstat and the move (a new upload at the same
  // name): give it back to pending, uncounted, for a later pass to look at.
  const st = await fsp.lstat(runningPath);
  if (st.ino !== c.ino) {
    await releaseToPending({ inbox: opts.inbox, processed: opts.processed, runningPath, ino: st.ino, attempts: 0 });
    await removeClaimRecord(ledgerFile);
    return { claimed: false, why: 'gone' };
  }
  await removeRetryEntry(opts.processed, c.rel);

  const claim: ClaimSection = {
    inbox: opts.inbox,
    rel: runningRel,
    path: runningPath,
    prompt_name: path.basename(c.rel),
    prompt_rel: c.rel,
    run_root: runRoot,
    attempt,
    claimed_at: claimedAt,
    liveness,
    ino: c.ino,
    ledger: claimRecordPath({ processed: opts.processed }, runId),
    ...(resumeId ? { resumed } : {}),
  };
  const record: PvRecord = { v: SCHEMA_VERSION, run_id: runId, claim };

  try {
    await fsp.mkdir(runRoot, { recursive: true });
    await updateRunStatus(runRoot, {
      state: 'claimed',
      prompt_rel: c.rel,
      attempt,
      step: 'claim',
      claimed_at: claimedAt,
      ...(resumeId ? { resumed, reason: `resumed (try ${attempt})`, settle: undefined, error: undefined } : {}),
    });
  } catch (err) {
    // The claim stands (the file is ours); settle puts it back to pending.
    record.error = recordError('claim', 'run_folder_failed', `cannot set up the run folder ${runRoot}: ${(err as Error).message}`, true);
    return { claimed: true, record };
  }
  if (c.kind !== 'file') {
    const what = c.kind === 'symlink' ? 'a symbolic link' : 'not a regular file';
    record.error = recordError('claim', c.kind === 'symlink' ? 'symlink_refused' : 'not_regular_file',
      `${c.rel} is ${what}; prompts must be plain files inside the inbox (not read, not followed)`, false);
    return { claimed: true, record };
  }
  try {
    // A resumed run keeps the copy it was started with.
    if (!resumeId || !fs.existsSync(runFile(runRoot, 'prompt'))) await copyPrompt(runningPath, runFile(runRoot, 'prompt'));
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    record.error = recordError('claim', 'prompt_unreadable', unreadableReason(c.rel, runningPath), false);
  }
  return { claimed: true, record };
}

/** Why a prompt could not be read, and what to do about it: one line. */
function unreadableReason(rel: string, file: string): string {
  let owner = 'another user';
  let mode = '';
  try {
    const st = fs.lstatSync(file);
    owner = userName(st.uid);
    mode = ` with mode 0${(st.mode & 0o777).toString(8)}`;
  } catch {
    // described without owner and mode
  }
  return (
    `${rel} is owned by ${owner}${mode}, which the service user ${serviceUser()} cannot read; ` +
    `make it readable (chmod 0644) or drop it as a member of the drop group, then retry it`
  );
}

/** Copy without following a symlink (the name is ours, but be certain). */
async function copyPrompt(src: string, dest: string): Promise<void> {
  const fh = await fsp.open(src, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let data: Buffer;
  try {
    data = await fh.readFile();
  } finally {
    await fh.close();
  }
  await writeFileAtomic(dest, data);
}

export interface ClaimLoopOptions {
  inbox: string;
  processed: string;
  lockId: string;
  settleSeconds: number;
  limit: number;
  dryRun: boolean;
  /** a prompt a file event named (relative to the inbox): tried before the walk */
  hint?: string;
  log: Logger;
  emit: (rec: PvRecord) => Promise<void>;
}

/**
 * Claim up to `limit` complete prompts, oldest first. A folder the service
 * user cannot read or write is reported once (processed/.ledger/problems),
 * in one line, and skipped; the other folders go on.
 *
 * With a `hint` (the path a file event named) that prompt is tried first,
 * by the same rules; the inbox is walked only if more are wanted. The walk
 * stays the truth: a hint that is stale, incomplete or not a prompt at all
 * costs a few lstat calls and then the walk.
 */
export async function claimPrompts(opts: ClaimLoopOptions): Promise<number> {
  const reportOnce = async (line: string) => {
    if (await firstReportOf(opts.processed, line)) opts.log.error(line);
    else opts.log.debug(line);
  };
  const withEntries = await retryEntryKeys(opts.processed);
  const refusedDirs = new Set<string>();
  const tried = new Set<string>();
  let claimed = 0;

  /** Claim one candidate if it is complete and may be claimed; true when it was. */
  const tryCandidate = async (c: InboxPrompt): Promise<boolean> => {
    if (!isCompletePrompt(c, opts.settleSeconds)) return false;
    if (refusedDirs.has(path.dirname(c.path))) return false;
    const pending = withEntries.has(retryEntryKey(c.rel)) ? await readRetryEntry(opts.processed, c.rel, c.ino) : undefined;
    if (opts.dryRun) {
      if (pending?.not_before && Date.parse(pending.not_before) > Date.now()) return false;
      await opts.emit({
        v: SCHEMA_VERSION,
        dry_run: true,
        candidate: { rel: c.rel, path: c.path, size: c.size, attempt: (pending?.attempts ?? 0) + 1 },
      });
      return true;
    }
    let outcome: ClaimOutcome;
    try {
      outcome = await claimPrompt(c, pending, { inbox: opts.inbox, processed: opts.processed, lockId: opts.lockId });
    } catch (err) {
      if (!(err instanceof FsPermissionError)) throw err;
      refusedDirs.add(path.dirname(c.path));
      await reportOnce(`cannot claim prompts in ${err.message}`);
      return false;
    }
    if (!outcome.claimed) {
      opts.log.debug(`skipped ${c.rel}: ${outcome.why}`);
      return false;
    }
    const resumed = outcome.record.claim?.resumed ? ` (resuming, try ${outcome.record.claim.attempt})` : '';
    opts.log.info(`claimed ${c.rel} as run ${outcome.record.run_id}${resumed}`);
    await opts.emit(outcome.record);
    return true;
  };

  if (opts.hint !== undefined && opts.limit > 0) {
    const named = await inboxPromptAt(opts.inbox, opts.hint);
    if (named) {
      tried.add(named.rel);
      if (await tryCandidate(named)) claimed++;
    }
    if (claimed >= opts.limit) return claimed;
  }

  const unreadable: string[] = [];
  const candidates = await listInboxPrompts(opts.inbox, { onProblem: (dir) => unreadable.push(dir) });
  for (const dir of unreadable) {
    await reportOnce(`cannot look into ${describeOwner(dir)}: ${serviceUser()} may not read it; nothing in it is claimed until it may (chmod g+rx for a group ${serviceUser()} is in)`);
  }
  for (const c of candidates) {
    if (claimed >= opts.limit) break;
    // Tried as the hint a moment ago: claimed (dry run) or not claimable; not twice in one pass.
    if (tried.has(c.rel)) continue;
    if (await tryCandidate(c)) claimed++;
  }
  return claimed;
}
