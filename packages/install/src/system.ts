import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Reporter } from './report.js';

/**
 * What only happens on the live system (`--root /`): the service user,
 * ownership, and systemctl. A staging root gets none of it.
 */
export interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export function runCommand(file: string, args: string[], timeoutMs = 300_000): CommandResult {
  const res = spawnSync(file, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: res.status === 0, stdout: res.stdout ?? '', stderr: (res.stderr ?? '') + (res.error ? String(res.error) : '') };
}

/** Run a command as an action: reported as `ran`, only reported with --dry-run. */
export function runAction(r: Reporter, what: string, file: string, args: string[]): boolean {
  const line = [file, ...args].join(' ');
  if (r.dryRun) {
    r.emit('ran', what, line);
    return true;
  }
  const res = runCommand(file, args);
  if (!res.ok) {
    r.emit('warning', what, `${line} failed: ${res.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    return false;
  }
  r.emit('ran', what, line);
  return true;
}

export interface UserIds {
  uid: number;
  gid: number;
}

export function lookupUser(user: string): UserIds | undefined {
  const res = runCommand('getent', ['passwd', user], 30_000);
  if (!res.ok) return undefined;
  const f = res.stdout.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export function ensureUser(r: Reporter, user: string, home: string): UserIds | undefined {
  const ids = lookupUser(user);
  if (ids) {
    r.emit('unchanged', `user:${user}`, `uid ${ids.uid}`);
    return ids;
  }
  runAction(r, `user:${user}`, 'useradd', ['--system', '--user-group', '--home-dir', home, '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  return r.dryRun ? undefined : lookupUser(user);
}

/** chown a path the installer just created; existing ownership is the operator's call. */
export function chownCreated(r: Reporter, file: string, ids: UserIds | undefined, gidOnly = false): void {
  if (!ids || r.dryRun) return;
  fs.chownSync(file, gidOnly ? 0 : ids.uid, ids.gid);
}

export function systemctlIsEnabled(unit: string): string {
  return runCommand('systemctl', ['is-enabled', unit], 30_000).stdout.trim();
}

export function systemctlIsActive(unit: string): string {
  return runCommand('systemctl', ['is-active', unit], 30_000).stdout.trim();
}
