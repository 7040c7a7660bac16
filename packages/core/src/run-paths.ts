import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { LEDGER_DIR } from './prompt-ledger.js';
import { checkOwnerName, checkRelativePath, checkRepoName, isInside } from './names.js';
import { PROMPT_SUFFIX } from './prompt-names.js';
import { StepError, type PvRecord } from './records.js';
import { isRunId } from './runid.js';

/**
 * Every path a tool acts on comes from the configuration and a validated id,
 * never from a record (docs/lifecycle.md, "Paths come from the
 * configuration"). A record is input: it may be forged. The absolute paths
 * records carry (`claim.path`, `claim.run_root`, `checkout.dir`, …) are
 * output for people; `expectPath` fails a record whose copy disagrees.
 */
export interface ValetRoots {
  inbox: string;
  processed: string;
  repos_root: string;
}

/** The run id of a record, checked (throws StepError `bad_run_id`). */
export function recordRunId(rec: PvRecord): string {
  const id = rec.run_id;
  if (typeof id !== 'string' || !isRunId(id)) {
    throw new StepError('bad_run_id', `run_id ${JSON.stringify(id)} is not a run id (YYYYMMDD-HHMMSS-mmm-xxxxxxxx)`);
  }
  return id;
}

/** `processed/<run id>` (PV_RUN_ROOT). */
export function runRootFor(roots: Pick<ValetRoots, 'processed'>, runId: string): string {
  if (!isRunId(runId)) throw new StepError('bad_run_id', `run_id ${JSON.stringify(runId)} is not a run id`);
  return path.join(path.resolve(roots.processed), runId);
}

/** `processed/.ledger/claims/<run id>.json`. */
export function claimRecordPath(roots: Pick<ValetRoots, 'processed'>, runId: string): string {
  if (!isRunId(runId)) throw new StepError('bad_run_id', `run_id ${JSON.stringify(runId)} is not a run id`);
  return path.join(path.resolve(roots.processed), LEDGER_DIR, 'claims', `${runId}.json`);
}

function checkTargetNames(owner: string, repo: string): void {
  for (const [field, check] of [
    ['owner', checkOwnerName(owner)],
    ['repo', checkRepoName(repo)],
  ] as const) {
    if (!check.ok) throw new StepError('bad_target', `target.${field}: ${check.reason}`);
  }
}

/** `repos_root/<owner>/<repo>`: the shared clone of the run's repository. */
export function repoDirFor(roots: Pick<ValetRoots, 'repos_root'>, owner: string, repo: string): string {
  checkTargetNames(owner, repo);
  return path.join(path.resolve(roots.repos_root), owner, repo);
}

/** `repos_root/.worktrees/<owner>/<repo>/<run id>`: the run's checkout. */
export function checkoutDirFor(roots: Pick<ValetRoots, 'repos_root'>, owner: string, repo: string, runId: string): string {
  checkTargetNames(owner, repo);
  if (!isRunId(runId)) throw new StepError('bad_run_id', `run_id ${JSON.stringify(runId)} is not a run id`);
  return path.join(path.resolve(roots.repos_root), '.worktrees', owner, repo, runId);
}

/**
 * Check a claimed file's path relative to the inbox: no absolute path, no
 * `..`, no hidden component, and a name in the given state
 * (`x.running.md` by default). Lexical; `runningFileFor` also resolves it.
 */
export function checkClaimRel(rel: unknown, suffix: string = PROMPT_SUFFIX.running): string {
  if (typeof rel !== 'string') throw new StepError('bad_claim', 'claim.rel is missing');
  const check = checkRelativePath(rel);
  if (!check.ok) throw new StepError('bad_claim', `claim.rel: ${check.reason}`);
  if (rel.split('/').some((part) => part.startsWith('.'))) {
    throw new StepError('bad_claim', `claim.rel ${JSON.stringify(rel)} has a hidden component`);
  }
  if (!rel.endsWith(suffix) || path.basename(rel).length <= suffix.length) {
    throw new StepError('bad_claim', `claim.rel ${JSON.stringify(rel)} does not name a ${suffix} file`);
  }
  return rel;
}

/**
 * The absolute path of the claimed file `inbox/<rel>`, with the folder it is
 * in resolved: a folder that is (or passes through) a symlink leading
 * outside the inbox is refused. The file itself is not followed: callers
 * lstat it and act on the name.
 */
export async function runningFileFor(roots: Pick<ValetRoots, 'inbox'>, rel: unknown, suffix?: string): Promise<string> {
  const checked = checkClaimRel(rel, suffix);
  const inbox = path.resolve(roots.inbox);
  const realInbox = await fsp.realpath(inbox);
  const dir = path.dirname(path.join(inbox, checked));
  let realDir: string;
  try {
    realDir = await fsp.realpath(dir);
  } catch (err) {
    throw new StepError('claim_missing', `the folder of ${checked} does not exist: ${(err as Error).message}`);
  }
  // The folder must be the very folder named, inside the inbox: a symlinked
  // branch folder pointing elsewhere would let a record move outside files.
  if (!isInside(realInbox, realDir) || path.relative(realInbox, realDir) !== path.dirname(checked).replace(/^\.$/, '')) {
    throw new StepError('foreign_path', `the folder of ${checked} leads outside the inbox ${inbox} (a symlink?)`);
  }
  return path.join(inbox, checked);
}

/**
 * A path a record carries must be the one the configuration gives; a forged
 * or stale record is failed (`foreign_path`) before anything is touched.
 * Missing fields are fine: the derived path is used.
 */
export function expectPath(field: string, given: unknown, derived: string): void {
  if (given === undefined) return;
  if (typeof given !== 'string' || path.resolve(given) !== path.resolve(derived)) {
    throw new StepError('foreign_path', `${field} ${JSON.stringify(given)} is not ${derived}: records cannot name other places`);
  }
}
