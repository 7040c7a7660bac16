import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceFileNoFollow } from './safe-files.js';
import { expectErrno } from '@prompt-valet/core';

/**
 * Each run gets a CODEX_HOME of its own (`processed/<run id>/jail/codex-home`):
 * codex writes its sessions and logs there, so one run's agent can neither
 * read another run's conversation nor plant something a later `codex
 * resume` would load. What codex needs from the operator's CODEX_HOME (the
 * model configuration and the login) is copied in at each start; the rest of
 * the operator's folder stays out of reach. A copy the agent changed is
 * replaced, never followed.
 */
export const CODEX_HOME_INPUTS = ['config.toml', 'auth.json'] as const;

export function operatorCodexHome(env: NodeJS.ProcessEnv): string | undefined {
  if (env.CODEX_HOME) return path.resolve(env.CODEX_HOME);
  return env.HOME ? path.join(env.HOME, '.codex') : undefined;
}

/** Copies the operator's inputs into the run's CODEX_HOME; returns the names copied. */
export function fillRunCodexHome(operatorHome: string | undefined, runHome: string): string[] {
  fs.mkdirSync(runHome, { recursive: true, mode: 0o700 });
  const copied: string[] = [];
  if (!operatorHome) return copied;
  for (const name of CODEX_HOME_INPUTS) {
    let data: Buffer;
    try {
      data = fs.readFileSync(path.join(operatorHome, name));
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ENOTDIR');
      continue;
    }
    replaceFileNoFollow(path.join(runHome, name), data);
    copied.push(name);
  }
  return copied;
}
