import * as fs from 'node:fs';
import type { Reporter } from './report.js';
import { lookupUser, runAction, runCommand } from './system.js';

/**
 * Who may drop prompts. Members of the drop group (and root) create folders
 * and files anywhere in the inbox with their default umask, and the service
 * user can still rename and read them: the inbox carries default ACLs
 * (`d:u:<service>:rwx`, `d:g:<drop>:rwx`), so every folder and file made below
 * it — by root's `sudo mkdir -p`, an operator's `scp`, Copyparty, pv-tree or
 * pv-web — inherits them. setgid alone is not enough: umask 022 takes the
 * group's write bit away. A file written 0600 (`scp -p`) gets mask `---` and
 * stays unreadable to the service, which settles it as a clear error.
 */
export const DEFAULT_DROP_GROUP = 'prompt-valet-drop';
/** Copyparty's own unprivileged user: writes the inbox only, reads processed/ and finished/. */
export const COPYPARTY_USER = 'prompt-valet-copyparty';

/** The ACL entries a folder must carry (access and default), as getfacl prints them. */
export function inboxAclEntries(serviceUser: string, dropGroup: string): string[] {
  return [`user:${serviceUser}:rwx`, `group:${dropGroup}:rwx`, 'mask::rwx', `default:user:${serviceUser}:rwx`, `default:group:${dropGroup}:rwx`, 'default:mask::rwx'];
}

export function readOnlyAclEntries(reader: string): string[] {
  return [`user:${reader}:r-x`, `default:user:${reader}:r-x`];
}

/** The ACL entries of `dir` that are missing from `want` (getfacl's own spelling). */
export function missingAclEntries(dir: string, want: string[]): string[] {
  const named = runCommand('getfacl', ['--omit-header', '--absolute-names', dir], 30_000);
  if (!named.ok) return want;
  const have = new Set(named.stdout.split('\n').map((l) => l.replace(/\s*#.*$/, '').trim()).filter(Boolean));
  return want.filter((e) => !have.has(e));
}

/**
 * Give `dir` (and what is already below it) the wanted entries, unless it has
 * them all: a second install touches nothing.
 */
export function ensureAcl(r: Reporter, dir: string, want: string[], detail: string): void {
  const missing = missingAclEntries(dir, want);
  if (missing.length === 0) {
    r.emit('unchanged', `acl:${dir}`, detail);
    return;
  }
  // -R: folders made before this install (an upgrade) get the same rule.
  // Capital X: execute only on folders, never on a prompt file.
  const spec = want.map((e) => e.replace(/^user:/, 'u:').replace(/^group:/, 'g:').replace(/^default:user:/, 'd:u:').replace(/^default:group:/, 'd:g:').replace(/^default:mask::/, 'd:m::').replace(/^mask::/, 'm::'));
  const access = spec.filter((e) => !e.startsWith('d:')).map((e) => e.replace(/rwx$/, 'rwX').replace(/r-x$/, 'rX')).join(',');
  const defaults = spec.filter((e) => e.startsWith('d:')).join(',');
  if (runAction(r, `acl:${dir}`, 'setfacl', ['-R', '-m', access, dir])) {
    runAction(r, `acl:${dir}`, 'sh', ['-c', 'find "$1" -type d -exec setfacl -m "$2" {} +', 'sh', dir, defaults]);
  }
}

/** The drop group exists (a system group). */
export function ensureGroup(r: Reporter, group: string): void {
  const res = runCommand('getent', ['group', group], 30_000);
  if (res.ok) r.emit('unchanged', `group:${group}`, `gid ${res.stdout.split(':')[2] ?? '?'}`);
  else runAction(r, `group:${group}`, 'groupadd', ['--system', group]);
}

export function groupMembers(group: string): string[] {
  const res = runCommand('getent', ['group', group], 30_000);
  return res.ok ? (res.stdout.trim().split(':')[3] ?? '').split(',').filter(Boolean) : [];
}

/** Each operator becomes a member of the drop group; an unknown user is a warning, not a failure. */
export function ensureMembers(r: Reporter, group: string, users: string[]): void {
  const members = groupMembers(group);
  for (const user of users) {
    if (!lookupUser(user)) r.emit('warning', `member:${user}`, `no such user: create it (adduser ${user}) and rerun`);
    else if (members.includes(user)) r.emit('unchanged', `member:${user}`, `in ${group}`);
    else runAction(r, `member:${user}`, 'usermod', ['--append', '--groups', group, user]);
  }
}

/** Copyparty's user: a system user whose only extra right is the drop group. */
export function ensureCopypartyUser(r: Reporter, group: string): void {
  if (lookupUser(COPYPARTY_USER)) {
    if (groupMembers(group).includes(COPYPARTY_USER)) r.emit('unchanged', `user:${COPYPARTY_USER}`, `in ${group}`);
    else runAction(r, `user:${COPYPARTY_USER}`, 'usermod', ['--append', '--groups', group, COPYPARTY_USER]);
    return;
  }
  runAction(r, `user:${COPYPARTY_USER}`, 'useradd', ['--system', '--user-group', '--groups', group, '--home-dir', '/nonexistent', '--no-create-home', '--shell', '/usr/sbin/nologin', COPYPARTY_USER]);
}

/** The credential file systemd hands the services: root-owned, 0600, in a 0700 root folder. */
export function credentialProblem(file: string): string | undefined {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) return `${file} is missing`;
  if (!st.isFile()) return `${file} is not a regular file`;
  if (st.uid !== 0) return `${file} is owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o077) !== 0) return `${file} is mode ${(st.mode & 0o777).toString(8)}, not 0600`;
  return undefined;
}
