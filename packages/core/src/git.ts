import { existsSync } from 'node:fs';
import { GIT_FORGE_TOKEN_ENV, gitCredentialArgs, gitTalksToRemote, readForgeToken, type ForgeToken } from './forge-token.js';
import { PvError } from './errors.js';
import { runProgram } from './run-program.js';

/**
 * Running git for every tool: never prompts for credentials (it fails
 * instead of hanging a service), never lets a credential reach a log or a
 * record, and says whether a failure is worth retrying.
 */
export interface GitResult {
  stdout: string;
  stderr: string;
}

export interface GitOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** milliseconds; default 10 minutes */
  timeout?: number;
  /** written to git's stdin; without it stdin is /dev/null */
  input?: string;
  /** most bytes kept of stdout, and of stderr; past it git is stopped and the call fails. Default MAX_GIT_OUTPUT. */
  maxOutput?: number;
  /** how stdout is decoded (default utf8): latin1 keeps each byte as one character, for paths that are not UTF-8 */
  stdoutEncoding?: 'utf8' | 'latin1';
}

/**
 * Output bound per stream: far above `worktree list --porcelain` or
 * `status --porcelain` of a large repository (a path per line), low enough
 * that a runaway command cannot take the tool's memory.
 */
export const MAX_GIT_OUTPUT = 64 * 1024 * 1024;

/** A git command that failed; its stderr (redacted) is the record's detail. */
export class GitError extends PvError {
  /** the command, with credentials redacted */
  readonly command: string;
  readonly exitCode: number | undefined;
  /** git's own stderr, with credentials redacted */
  readonly stderr: string;
  constructor(command: string, exitCode: number | undefined, stderr: string, timedOut: boolean, cause?: unknown) {
    super('git_failed', `${command}: ${gitReason(stderr) || (timedOut ? 'timed out' : `exit ${exitCode}`)}`, {
      retryable: timedOut || isRetryableGitFailure(stderr),
      ...(stderr ? { detail: stderr } : {}),
      ...(cause === undefined ? {} : { cause }),
    });
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Longest reason kept in a GitError's message; the whole stderr stays in `stderr`. */
const MAX_REASON = 600;

/**
 * git's reason in one line: every non-empty line of its stderr, joined
 * ("unable to connect to 127.0.0.1: … errno=Connection refused" spans two
 * lines, and the first alone says nothing), bounded.
 */
export function gitReason(stderr: string): string {
  const joined = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
  return joined.length > MAX_REASON ? `${joined.slice(0, MAX_REASON)}…` : joined;
}

/** `https://user:token@host/…` → `https://***@host/…`; also `?access_token=…`. */
export function redactCredentials(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@')
    .replace(/((?:access_)?token=)[^&\s]+/gi, '$1***')
    .replace(/\b(gh[pousr]_[A-Za-z0-9]{20,})\b/g, '***')
    .replace(/\b(github_pat_[A-Za-z0-9_]{20,})\b/g, '***');
}

/**
 * Failures that another attempt may not meet: the network, the remote
 * hanging up, a lock held by a concurrent git, a push that lost a race.
 * Everything else (a missing branch, bad auth, a corrupt repository) needs a
 * person.
 */
const RETRYABLE_PATTERNS = [
  /could not resolve host/i,
  /connection (refused|timed out|reset)/i,
  /network is unreachable/i,
  /operation timed out/i,
  /the remote end hung up/i,
  /early eof/i,
  /rpc failed/i,
  /unable to access '.*': (?!.*(403|401|404))/i,
  /temporary failure/i,
  /\b(502|503|504)\b/,
  /rate limit/i,
  /unable to create '.*\.lock': file exists/i,
  /cannot lock ref/i,
  /failed to push some refs/i,
  /\[rejected\]|\[remote rejected\]/i,
  /fetch first|non-fast-forward/i,
  /ssh: connect to host/i,
  /broken pipe/i,
];

export function isRetryableGitFailure(stderr: string): boolean {
  return RETRYABLE_PATTERNS.some((re) => re.test(stderr));
}

/** Environment that keeps git from ever waiting on a person or an editor. */
export function gitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: process.env.GIT_ASKPASS ?? '',
    SSH_ASKPASS: '',
    GCM_INTERACTIVE: 'never',
    GIT_EDITOR: 'true',
    LC_ALL: 'C',
    ...extra,
  };
}

/**
 * Run `git <args>`. Arguments are passed as an array (no shell), and callers
 * put `--` before any name that came from outside. Throws GitError.
 *
 * git is spawned by core's runProgram (node:child_process), not execa: a
 * run makes 15-25 git calls (run-program.ts says what that saves).
 */
export async function git(args: string[], opts: GitOptions = {}): Promise<GitResult> {
  const env = gitEnv(opts.env);
  let fullArgs = args;
  if (gitTalksToRemote(args)) {
    // The forge token, for this one git process only (forge-token.ts).
    let forge: ForgeToken | undefined;
    try {
      forge = readForgeToken(env);
    } catch (err) {
      throw new GitError(redactCredentials(`git ${args.join(' ')}`), undefined, (err as Error).message, false);
    }
    if (forge) {
      fullArgs = [...gitCredentialArgs(), ...args];
      env[GIT_FORGE_TOKEN_ENV] = forge.token;
    }
  }
  const result = await runProgram('git', fullArgs, { ...opts, env, maxOutput: opts.maxOutput ?? MAX_GIT_OUTPUT });
  const command = () => redactCredentials(`git ${args.join(' ')}`);
  if (result.spawnError) {
    const cause = result.spawnError;
    const reason = cause.code !== 'ENOENT'
      ? String(cause.message)
      : opts.cwd !== undefined && !existsSync(opts.cwd)
        ? `the folder ${opts.cwd} does not exist`
        : 'git is not installed (not found on PATH)';
    throw new GitError(command(), undefined, reason, false, cause);
  }
  if (result.overflow) {
    throw new GitError(command(), undefined,
      `git printed more than ${result.maxOutput} bytes on ${result.overflow}; stopped it (GitOptions.maxOutput)`, false);
  }
  if (result.timedOut || result.exitCode !== 0) {
    const stderr = result.signal && !result.timedOut && !result.stderr ? `killed by ${result.signal}` : result.stderr;
    throw new GitError(command(), result.exitCode, redactCredentials(stderr), result.timedOut);
  }
  return { stdout: result.stdout, stderr: result.stderr };
}
