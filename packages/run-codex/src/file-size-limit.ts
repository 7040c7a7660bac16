import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno } from '@prompt-valet/core';

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
 * Checked once, after the agent exits: walking a large checkout at every
 * poll would cost more than the limit saves.
 */
export function filesCutAtSizeLimit(checkoutDir: string, maxFileBytes: number, changedSinceMs: number): string[] {
  const cut: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(checkoutDir, rel), { withFileTypes: true });
    } catch (err) {
      // a folder the agent made unreadable, or removed meanwhile: nothing of it can be published either
      expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
      return;
    }
    for (const entry of entries) {
      const entryRel = rel ? path.join(rel, entry.name) : entry.name;
      // The checkout's own .git is a pointer file (the shared clone's git folder is read-only in the jail).
      if (!rel && entry.name === '.git') continue;
      // Symlinks are committed as links, never followed: what they point at is not the run's.
      if (entry.isDirectory()) walk(entryRel);
      else if (entry.isFile()) {
        const st = lstatOrUndefined(path.join(checkoutDir, entryRel));
        if (st && st.size >= maxFileBytes && st.mtimeMs >= changedSinceMs) cut.push(entryRel);
      }
    }
  };
  walk('');
  return cut.sort();
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
    return undefined;
  }
}
