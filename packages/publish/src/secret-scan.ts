import { StepError } from '@prompt-valet/core';

/**
 * Before a push, the diff and the PR text are scanned for the forge token
 * and for common secret shapes; a hit blocks the push (non-retryable
 * `secret_detected`). The message names the file, the line and the kind of
 * secret, never the secret itself.
 */
export interface SecretPattern {
  name: string;
  pattern: RegExp;
}

export const SECRET_PATTERNS: readonly SecretPattern[] = [
  { name: 'a GitHub token (ghp_/gho_/ghs_/ghu_/ghr_)', pattern: /\bgh[pousr]_[A-Za-z0-9]{30,}/ },
  { name: 'a GitHub fine-grained token (github_pat_)', pattern: /\bgithub_pat_[A-Za-z0-9_]{22,}/ },
  { name: 'an AWS access key id (AKIA…)', pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { name: 'a private key (-----BEGIN … PRIVATE KEY-----)', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { name: 'an API secret key (sk-…)', pattern: /\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}/ },
  { name: 'a Slack token (xoxb-/xoxp-)', pattern: /\bxox[bpas]-[A-Za-z0-9-]{10,}/ },
];

/** Known secret values shorter than this are not searched for (they would match by chance). */
const MIN_KNOWN_SECRET = 8;

export interface SecretHit {
  /** the file in the diff, or `the PR title and body` */
  where: string;
  line: number;
  kind: string;
}

/** The first secret in `text`, line by line; `knownSecrets` are literal values such as the forge token. */
export function findSecret(text: string, where: string, knownSecrets: readonly string[]): SecretHit | undefined {
  const known = knownSecrets.filter((s) => s.length >= MIN_KNOWN_SECRET);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (known.some((s) => line.includes(s))) return { where, line: i + 1, kind: 'the forge token pv-publish holds' };
    for (const p of SECRET_PATTERNS) if (p.pattern.test(line)) return { where, line: i + 1, kind: p.name };
  }
  return undefined;
}

/**
 * Scan the lines a unified diff (`git diff -U0`) adds, per file. Removed and
 * context lines are not the agent's to answer for.
 */
export function findSecretInDiff(diff: string, knownSecrets: readonly string[]): SecretHit | undefined {
  let file = '?';
  let newLine = 0;
  for (const line of diff.split('\n')) {
    if (line.startsWith('+++ ')) {
      file = line.slice(4).replace(/^b\//, '');
      continue;
    }
    const hunk = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk) {
      newLine = Number(hunk[1]);
      continue;
    }
    if (line.startsWith('+')) {
      const hit = findSecret(line.slice(1), file, knownSecrets);
      if (hit) return { ...hit, line: newLine };
      newLine++;
    }
  }
  return undefined;
}

export function secretError(hit: SecretHit, keptIn: string): StepError {
  return new StepError('secret_detected',
    `${hit.where} line ${hit.line} holds what looks like ${hit.kind}; nothing was pushed (the work stays in ${keptIn} for a person to look at)`);
}
