import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { PvError } from './errors.js';

/**
 * Validation of every name that comes from the filesystem or a record before
 * it reaches git, gh or a path. A failed check is a value, not an exception,
 * so callers can turn it into an error record.
 */
export type NameCheck = { ok: true } | { ok: false; reason: string };

const OK: NameCheck = { ok: true };
const bad = (reason: string): NameCheck => ({ ok: false, reason });

const GITHUB_NAME_RE = /^[A-Za-z0-9_.-]+$/;
const MAX_NAME = 100;

function checkGithubName(kind: string, name: string): NameCheck {
  if (typeof name !== 'string' || name.length === 0) return bad(`${kind} name is empty`);
  if (name.length > MAX_NAME) return bad(`${kind} name is longer than ${MAX_NAME} characters`);
  if (name === '.' || name === '..') return bad(`${kind} name may not be "${name}"`);
  if (name.startsWith('-')) return bad(`${kind} name may not start with "-"`);
  if (!GITHUB_NAME_RE.test(name)) {
    return bad(`${kind} name ${JSON.stringify(name)} may hold only letters, digits, "-", "_" and "."`);
  }
  return OK;
}

/** A GitHub owner (user or organisation). */
export function checkOwnerName(name: string): NameCheck {
  return checkGithubName('owner', name);
}

/** A GitHub repository name. */
export function checkRepoName(name: string): NameCheck {
  return checkGithubName('repository', name);
}

/**
 * A branch name by git's check-ref-format rules (as `refs/heads/<name>`), and
 * no leading "-" so that it can never be read as an option.
 */
export function checkBranchName(name: string): NameCheck {
  if (typeof name !== 'string' || name.length === 0) return bad('branch name is empty');
  if (name.length > 255) return bad('branch name is longer than 255 characters');
  if (name.startsWith('-')) return bad('branch name may not start with "-"');
  return checkGitBranchFormat(name);
}

/**
 * git's own check-ref-format rules for `refs/heads/<name>`: what git accepts
 * as a branch, before the valet's stricter checkBranchName (pv-tree lists a
 * branch git accepts even when the valet cannot use it).
 */
export function checkGitBranchFormat(name: string): NameCheck {
  if (name.length === 0) return bad('branch name is empty');
  if (name === '@') return bad('branch name may not be "@"');
  if (name.startsWith('/') || name.endsWith('/')) return bad('branch name may not start or end with "/"');
  if (name.includes('//')) return bad('branch name may not contain "//"');
  if (name.includes('..')) return bad('branch name may not contain ".."');
  if (name.includes('@{')) return bad('branch name may not contain "@{"');
  if (name.endsWith('.')) return bad('branch name may not end with "."');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) {
    return bad(`branch name ${JSON.stringify(name)} contains a character git forbids (space, control, ~ ^ : ? * [ \\)`);
  }
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return bad(`branch name component ${JSON.stringify(part)} may not start with "."`);
    if (part.endsWith('.lock')) return bad(`branch name component ${JSON.stringify(part)} may not end with ".lock"`);
  }
  return OK;
}

/**
 * The one folder rule for branch names that contain "/": in the inbox the
 * branch `feature/x` is the single folder `feature~x`. "~" can never occur
 * in a git branch name, so the rule is reversible without escaping, and a
 * branch folder is always exactly one path component (so subfolders below
 * it stay free for the operator's own grouping). pv-tree and pv-resolve both
 * use these two functions.
 */
export const BRANCH_FOLDER_SEPARATOR = '~';

export function branchToFolder(branch: string): string {
  return branch.split('/').join(BRANCH_FOLDER_SEPARATOR);
}

export function folderToBranch(folder: string): string {
  return folder.split(BRANCH_FOLDER_SEPARATOR).join('/');
}

/**
 * A path relative to some root that must stay inside it: no absolute path,
 * no "." or ".." component, no empty component, no NUL. Purely lexical; use
 * `resolveInside` to also rule out symlinks that lead outside.
 */
export function checkRelativePath(rel: string): NameCheck {
  if (typeof rel !== 'string' || rel.length === 0) return bad('path is empty');
  if (rel.includes('\0')) return bad('path contains a NUL byte');
  if (path.isAbsolute(rel)) return bad(`path ${JSON.stringify(rel)} is absolute`);
  for (const part of rel.split('/')) {
    if (part === '') return bad(`path ${JSON.stringify(rel)} has an empty component`);
    if (part === '.' || part === '..') return bad(`path ${JSON.stringify(rel)} may not contain "${part}"`);
  }
  return OK;
}

/** True when `child` is `root` or lies below it (both absolute, normalised). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolve `rel` under `root` and make sure the result, with every symlink
 * followed, is still inside `root`. The target need not exist: the longest
 * existing prefix is resolved. Throws a PathEscapeError otherwise.
 */
export async function resolveInside(root: string, rel: string): Promise<string> {
  const check = checkRelativePath(rel);
  if (!check.ok) throw new PathEscapeError(check.reason);
  const realRoot = await fsp.realpath(root);
  const lexical = path.join(realRoot, rel);
  let existing = lexical;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = await fsp.realpath(existing);
      const full = path.join(real, ...rest);
      if (!isInside(realRoot, full)) {
        throw new PathEscapeError(`path ${JSON.stringify(rel)} leads outside ${root}`);
      }
      return full;
    } catch (err) {
      if (err instanceof PathEscapeError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (existing === realRoot) throw err;
      rest.unshift(path.basename(existing));
      existing = path.dirname(existing);
    }
  }
}

export class PathEscapeError extends PvError {
  constructor(message: string) {
    super('path_escape', message);
  }
}

/**
 * A prompt's name made safe for a git branch: lower case ASCII letters,
 * digits and single "-", at most `max` characters, never empty.
 */
export function slugify(text: string, max = 40): string {
  const slug = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
  return slug || 'prompt';
}
