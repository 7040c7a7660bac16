import { execa } from 'execa';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PvRecord } from '@prompt-valet/core';

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
}

/** Spawn a built pv-* bin with arguments and stdin, wait, parse its records. */
export async function runBin(tool: string, args: string[], opts: RunBinOptions = {}): Promise<BinResult> {
  const input =
    opts.input === undefined ? '' : typeof opts.input === 'string' ? opts.input : opts.input.map((r) => JSON.stringify(r) + '\n').join('');
  const result = await execa(process.execPath, [binPath(tool), ...args], {
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
      } catch {
        throw new Error(`stdout line is not a JSON record: ${l.slice(0, 200)}`);
      }
    });
}

/** Poll `check` until it returns a truthy value or `timeoutMs` passes (then throw, naming `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
