import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno } from '@prompt-valet/core';

/**
 * Where `runner_cmd` lives: a name is looked up on PATH like a shell would, a
 * value with a slash is taken as a path. undefined when nothing executable is
 * there, so a missing codex is one clear error before any record runs.
 */
export function findRunner(cmd: string, env: NodeJS.ProcessEnv, cwd = process.cwd()): string | undefined {
  const candidates = cmd.includes('/')
    ? [path.resolve(cwd, cmd)]
    : (env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(path.resolve(cwd, dir), cmd));
  for (const file of candidates) {
    try {
      if (!fs.statSync(file).isFile()) continue;
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES');
      // not here: try the next folder
    }
  }
  return undefined;
}
