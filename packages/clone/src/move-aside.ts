import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Nothing the valet replaces is deleted: a folder in the way (a non-git
 * folder, a clone of another origin, an earlier run's checkout) is renamed
 * into `<repos_root>/.trash/<what>/<name>-<time>-<random>`. A rename inside
 * repos_root is atomic and keeps every file; the operator empties the trash.
 */
export async function moveAside(reposRoot: string, dir: string, what: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dest = path.join(reposRoot, '.trash', what, `${path.basename(dir)}-${stamp}-${randomBytes(3).toString('hex')}`);
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  await fsp.rename(dir, dest);
  return dest;
}
