import { locateRunCheckout, lstatIfPresent, PvError, worktreeStatus } from '@prompt-valet/core';

/**
 * RLIMIT_FSIZE (watcher.agent_max_file_bytes) cuts a write at the limit:
 * the writer gets SIGXFSZ (or EFBIG) and the file stays behind, exactly
 * the limit long. The writer dies inside the jail's PID namespace, where
 * pv-run-codex cannot see it, and codex carries on; so what is checked is
 * what would be published: a file of the checkout that the run wrote
 * (changed since the agent started) and that reached the limit is a cut
 * file, and the run settles as `resource_limit`. The file is left as it is
 * (nothing the agent produced is deleted). A file the agent cut and then
 * removed or truncated itself harms nothing and is not counted.
 *
 * What pv-publish would publish is what `git add --all` takes: the paths
 * `git status` names, changed or untracked, never an ignored one. So git
 * is asked (one hardened status on the worktree admin folder the
 * configuration names, as pv-publish does) instead of walking the checkout,
 * whose ignored node_modules or build output can be 10^5 files. Checked
 * once, after the agent exits.
 */

/** Where the run's checkout is, from the configuration (never from the checkout's own `.git` file). */
export interface CutFileCheckout {
  /** the shared clone `repos_root/<owner>/<repo>` */
  repoDir: string;
  /** the run's checkout, a worktree of the shared clone */
  workTree: string;
}

export type CutFiles =
  | { checked: true; files: string[] }
  /** the checkout could not be read through git (gone, not a worktree, git failed): nothing is known to be cut */
  | { checked: false; error: PvError };

export async function filesCutAtSizeLimit(checkout: CutFileCheckout, maxFileBytes: number, changedSinceMs: number): Promise<CutFiles> {
  let changed: Awaited<ReturnType<typeof worktreeStatus>>['changed'];
  try {
    changed = (await worktreeStatus(await locateRunCheckout(checkout.repoDir, checkout.workTree))).changed;
  } catch (err) {
    if (err instanceof PvError) return { checked: false, error: err };
    // the admin folder's gitdir record is there but unreadable, or not a file: the agent cannot reach it, so the clone is broken
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return { checked: false, error: new PvError('not_a_git_repo', (err as Error).message, { cause: err }) };
    throw err;
  }
  const cut: string[] = [];
  for (const entry of changed) {
    if (entry.deleted) continue;
    // git names no path behind a symlinked folder; the path itself is not followed either (a link is committed as a link).
    // Gone since git named it, or in a folder the agent made unreadable (git warns and goes on): not a cut file.
    const st = lstatIfPresent(Buffer.concat([Buffer.from(`${checkout.workTree}/`), entry.pathBytes]), 'EACCES');
    if (st?.isFile() && st.size >= maxFileBytes && st.mtimeMs >= changedSinceMs) cut.push(entry.path);
  }
  return { checked: true, files: cut.sort() };
}
