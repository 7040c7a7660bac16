import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { ValetConfig } from '@prompt-valet/core';

/**
 * The programs the services need at run time, where they are, and the
 * command that installs each one on Debian 12.
 */
export interface DependencyCheck {
  name: string;
  found: string | undefined;
  ok: boolean;
  detail: string;
  /** shell command that installs it (run by --install-deps) */
  install: string;
}

const NODE_INSTALL =
  'curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs';

export function which(cmd: string, envPath: string | undefined): string | undefined {
  const candidates = cmd.includes('/') ? [cmd] : (envPath ?? '').split(':').filter(Boolean).map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

function versionOf(file: string, env: NodeJS.ProcessEnv): string {
  const res = spawnSync(file, ['--version'], { env, encoding: 'utf8', timeout: 30_000 });
  return (res.stdout ?? '').trim().split('\n')[0] ?? '';
}

export function checkDependencies(config: ValetConfig, env: NodeJS.ProcessEnv): DependencyCheck[] {
  const checks: DependencyCheck[] = [];
  const node = which('node', env.PATH);
  const nodeVersion = node ? versionOf(node, env) : '';
  const major = Number(/^v(\d+)/.exec(nodeVersion)?.[1] ?? 0);
  checks.push({
    name: 'node',
    found: node,
    ok: Boolean(node) && major >= 20,
    detail: node ? `${nodeVersion || 'unknown version'}${major >= 20 ? '' : ' (need >= 20)'}` : 'not found (need >= 20)',
    install: NODE_INSTALL,
  });
  const simple = (name: string, cmd: string, install: string) => {
    const found = which(cmd, env.PATH);
    checks.push({ name, found, ok: Boolean(found), detail: found ? versionOf(found, env) || 'found' : `${cmd} not found`, install });
  };
  simple('git', 'git', 'apt-get install -y git');
  simple('codex', config.watcher.runner_cmd, 'npm install -g @openai/codex');
  if (config.watcher.publisher === 'gh') simple('gh', config.watcher.gh_cmd, 'apt-get install -y gh');
  return checks;
}
