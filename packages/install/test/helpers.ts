import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = path.join(REPO, 'packages', 'install', 'bin', 'pv-install.js');
export const PREFIX = '/srv/prompt-valet';
/** node, git, gh from the system; codex from the checkout, as a server would have them. */
export const PATH_WITH_DEPS = `${path.join(REPO, 'node_modules', '.bin')}:/usr/local/bin:/usr/bin:/bin`;

export interface Line {
  v: number;
  action?: string;
  check?: string;
  ok?: boolean;
  path?: string;
  detail: string;
  dry_run?: boolean;
}

export interface Run {
  status: number | null;
  lines: Line[];
  stderr: string;
}

export function pvInstall(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const res = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 240_000,
    env: { PATH: PATH_WITH_DEPS, HOME: os.tmpdir(), NO_COLOR: '1', ...env },
  });
  const lines = (res.stdout ?? '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  return { status: res.status, lines, stderr: res.stderr ?? '' };
}

export function tempRoot(t: { teardown(fn: () => void): void }, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pv-install-${name}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'root');
}

export const inRoot = (root: string, p: string) => path.join(root, p);
