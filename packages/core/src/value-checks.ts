import { checkBranchName, checkOwnerName } from './names.js';

/**
 * Checks of a value by what it will be used for, shared by the
 * configuration and a prompt's front matter, so a value refused in one is
 * refused in the other. Each returns what was expected when the value cannot
 * serve (a phrase that follows "expected"), or undefined when it can.
 */
export type ValueCheck = (value: string) => string | undefined;

// C0, DEL and C1: never in a name, a line of a log, or an argument.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f-\x9f]/;

export const singleLine: ValueCheck = (v) =>
  CONTROL_RE.test(v) ? 'a single line without control characters' : undefined;

/** A filesystem path: anything but control characters (a newline in a path only ever misleads). */
export const pathText: ValueCheck = (v) =>
  CONTROL_RE.test(v) ? 'a path without control characters or line breaks' : undefined;

const MODEL_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;
/** It reaches the agent's argument list after `--model`: it must never read as an option. */
export const modelName: ValueCheck = (v) =>
  MODEL_RE.test(v) ? undefined : 'a model name (a letter or digit, then letters, digits, . _ : / -; at most 100)';

export const ownerOrEmpty: ValueCheck = (v) => {
  if (v === '') return undefined;
  const check = checkOwnerName(v);
  return check.ok ? undefined : `a GitHub owner name (${check.reason})`;
};

/** A branch pattern of tree_builder: a branch name in which "*" stands for any characters. */
export const branchPattern: ValueCheck = (v) => {
  const check = checkBranchName(v.replaceAll('*', 'x'));
  return check.ok ? undefined : `a branch name or pattern with "*" (${check.reason})`;
};

// The longest slug pv-resolve makes (core slugify's default) and a run id of the real shape.
const SAMPLE_AGENT_SUFFIX = `${'a'.repeat(40)}-20260101-120000-000-abcdefgh`;
/**
 * `<prefix><slug>-<run id>` must be a valid branch for every slug. Slugs
 * are lower-case letters, digits and inner "-", starting with a letter or
 * digit, so one sample of the longest slug decides it for all of them.
 */
export const agentBranchPrefix: ValueCheck = (v) => {
  const check = checkBranchName(`${v}${SAMPLE_AGENT_SUFFIX}`);
  return check.ok ? undefined : `a prefix that forms a valid branch name with any prompt slug (${v}<slug>-<run id>: ${check.reason})`;
};

/** A program name or path: it is started, never read as an option. */
export const commandName: ValueCheck = (v) =>
  CONTROL_RE.test(v) || v.startsWith('-') ? 'a program name or path (no leading "-", no control characters)' : undefined;

/** One argument of the agent's command line (execve cannot carry NUL; a line break only misleads the log). */
export const commandArgument: ValueCheck = (v) =>
  CONTROL_RE.test(v) ? 'an argument without control characters' : undefined;

export const envVarName: ValueCheck = (v) =>
  /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? undefined : 'an environment variable name (letters, digits, _; not starting with a digit)';

/** A host (name, IPv4 or bracketed IPv6) with an optional port. */
export const hostName: ValueCheck = (v) =>
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)(?::\d{1,5})?$/.test(v)
    ? undefined
    : 'a host name or address (optionally :port)';

export const hostOrEmpty: ValueCheck = (v) => (v === '' ? undefined : hostName(v));

/** The legacy top-level git_host: a clone-URL host when set. */
export const urlHostOrEmpty: ValueCheck = (v) => (v === '' ? undefined : urlHost(v));

/**
 * git_default_host is put into clone URLs: `https://<it>/owner/repo.git`,
 * `git@<it>:owner/repo.git`. A host with an optional port and path prefix;
 * never a leading "-", "@", whitespace or anything a URL would misread.
 */
export const urlHost: ValueCheck = (v) =>
  /^[A-Za-z0-9\[][A-Za-z0-9.:\[\]_~%-]*(?:\/[A-Za-z0-9._~%-]+)*\/?$/.test(v)
    ? undefined
    : 'a host name, optionally with :port and a /path prefix (no user@, spaces or control characters)';

/** git keeps a name with "<", ">" or a line break as something else (it strips them): refuse instead. */
export const authorName: ValueCheck = (v) =>
  CONTROL_RE.test(v) || /[<>]/.test(v) || v.trim() === '' ? 'a single-line name without < or >' : undefined;

export const authorEmail: ValueCheck = (v) =>
  /^[^\s<>\x00-\x1f\x7f-\x9f]+$/.test(v) ? undefined : 'an email address (one word, no < >, spaces or control characters)';

/** GitHub's limit on a label's name is 50 characters. */
export const labelName: ValueCheck = (v) =>
  v.trim() === '' || v.length > 50 || CONTROL_RE.test(v) ? 'a label (1 to 50 characters on one line)' : undefined;

/** Run the first check that fails; undefined when every one passes. */
export function firstProblem(value: string, checks: readonly ValueCheck[]): string | undefined {
  for (const check of checks) {
    const problem = check(value);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
