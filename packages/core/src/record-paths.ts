import { checkoutDirFor, expectPath, recordRunId, runRootFor, type ValetRoots } from './run-paths.js';
import { StepError, type PvRecord } from './records.js';

/**
 * The paths one step acts on for a record, derived from the configuration
 * and the record's validated ids (core run-paths). The record's own copies
 * (`claim.run_root`, `checkout.dir`) must agree or the record fails with
 * `foreign_path` before anything is touched.
 */
export interface RunOfRecord {
  runId: string;
  /** `processed/<run id>` */
  runRoot: string;
}

export function runOfRecord(rec: PvRecord, roots: Pick<ValetRoots, 'processed'>): RunOfRecord {
  const runId = recordRunId(rec);
  const runRoot = runRootFor(roots, runId);
  expectPath('claim.run_root', rec.claim?.run_root, runRoot);
  return { runId, runRoot };
}

/** `repos_root/.worktrees/<owner>/<repo>/<run id>`, checked against `checkout.dir`. */
export function checkoutOfRecord(rec: PvRecord, roots: Pick<ValetRoots, 'repos_root'>, runId: string): string {
  const t = rec.target;
  if (!t || typeof t !== 'object') throw new StepError('missing_target', 'record has no "target" section (run pv-resolve first)');
  const dir = checkoutDirFor(roots, t.owner, t.repo, runId);
  expectPath('checkout.dir', rec.checkout?.dir, dir);
  return dir;
}
