import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PvRecord } from '@prompt-valet/core';
import { expectSyntaxError } from '@prompt-valet/core';

/** The repository's top folder (testkit lives in packages/testkit/dist). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Absolute path of a tool's built bin: `binPath('pv-claim')`. */
export function binPath(tool: string): string {
  const pkg = tool.replace(/^pv-/, '');
  return path.join(REPO_ROOT, 'packages', pkg, 'bin', `${tool}.js`);
}

export interface BinResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (throws, naming the line, when stdout is not records) */
  readonly records: PvRecord[];
}

export interface RunBinOptions {
  /** records (or raw text) fed on stdin; stdin is closed after */
  input?: PvRecord[] | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** milliseconds; every spawned tool is bounded (default 120 s) */
  timeout?: number;
  /**
   * run under a claim lock of this valet's `processed` folder, as pv-watcher
   * does (fd 9, PV_CLAIM_LOCK): pv-claim refuses to claim without one
   */
  claimLockIn?: string;
}

/** Single-quote for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A shell script that runs `command` holding a fresh claim lock in
 * `processed` the way pv-watcher gives one to a pipeline: the lock file is
 * opened as fd 9 and flock'ed, and PV_CLAIM_LOCK names it; every process of
 * `command` inherits it, so the claim lives as long as they do.
 */
export function claimLockedCommand(processed: string, command: string, lockId = `test-${randomBytes(4).toString('hex')}`): string {
  const dir = path.join(processed, '.ledger', 'locks');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${lockId}.lock`);
  return `exec 9<>${shQuote(file)} && flock -n 9 || exit 75; export PV_CLAIM_LOCK=${shQuote(lockId)}; ${command}`;
}

/** Spawn a built pv-* bin with arguments and stdin, wait, parse its records. */
export async function runBin(tool: string, args: string[], opts: RunBinOptions = {}): Promise<BinResult> {
  const input =
    opts.input === undefined ? '' : typeof opts.input === 'string' ? opts.input : opts.input.map((r) => JSON.stringify(r) + '\n').join('');
  const argv = [process.execPath, binPath(tool), ...args];
  const [file, ...rest] = opts.claimLockIn
    ? ['sh', '-c', claimLockedCommand(opts.claimLockIn, argv.map(shQuote).join(' '))]
    : argv;
  const result = await execa(file!, rest, {
    input,
    env: { NO_COLOR: '1', ...opts.env },
    cwd: opts.cwd,
    timeout: opts.timeout ?? 120_000,
    reject: false,
    stripFinalNewline: false,
  });
  const stdout = String(result.stdout ?? '');
  return {
    code: result.exitCode ?? -1,
    stdout,
    stderr: String(result.stderr ?? ''),
    get records() {
      return parseRecords(stdout);
    },
  };
}

export function parseRecords(stdout: string): PvRecord[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as PvRecord;
      } catch (err) {
        expectSyntaxError(err);
        throw new Error(`stdout line is not a JSON record: ${l.slice(0, 200)}`);
      }
    });
}

/** T without the falsy values `waitFor` keeps polling past. */
export type Truthy<T> = Exclude<T, undefined | null | false | 0 | ''>;

const isTruthy = <T>(v: T): v is Truthy<T> => Boolean(v);

/** Poll `check` until it returns a truthy value or `timeoutMs` passes (then throw, naming `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 50): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (isTruthy(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
