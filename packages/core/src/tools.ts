import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno } from './files.js';

/**
 * Where the other pv-* executables are, for tools that start them (pv-watcher
 * runs the pipeline, pv-install --verify runs the installed ones). In order:
 * $PV_TOOLS_DIR; the folder of the running tool's own bin (the installed
 * layout, /srv/prompt-valet/scripts, keeps them side by side); the monorepo
 * layout packages/<pkg>/bin/<name>.js, or packages/<pkg>/bundle/<name>.js when
 * the running tool is a bundle (a bundle starts bundles, dist starts dist);
 * else the bare name, found on PATH.
 */
export function locateTool(name: string, opts: { env?: NodeJS.ProcessEnv; selfBin?: string } = {}): string {
  const env = opts.env ?? process.env;
  const selfBin = opts.selfBin ?? process.argv[1] ?? '';
  const dirs: string[] = [];
  if (env.PV_TOOLS_DIR) dirs.push(env.PV_TOOLS_DIR);
  if (selfBin) {
    let real = selfBin;
    try {
      real = fs.realpathSync(selfBin);
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP');
      // not a file we can resolve; use it as given
    }
    dirs.push(path.dirname(real));
    // packages/<pkg>/bin/<tool>.js → packages/<other>/bin/<name>.js (bundle/ → bundle/)
    dirs.push(path.join(path.dirname(real), '..', '..', name.replace(/^pv-/, ''), path.basename(path.dirname(real))));
  }
  for (const dir of dirs) {
    for (const file of [name, `${name}.js`]) {
      const candidate = path.join(dir, file);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return path.resolve(candidate);
      } catch (err) {
        expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
        // try the next place
      }
    }
  }
  return name;
}
