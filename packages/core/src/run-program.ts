import { spawn } from 'node:child_process';

/**
 * Running a short-lived program the tools call many times per run (git,
 * 15-25 times; gh once or twice) with node:child_process rather than execa,
 * which the tools keep for the agent and the queue's commands: each call
 * through execa cost 1.3 ms more CPU (2.3 ms against 1.0 ms per
 * `git --version`), and loading execa is ~10 ms of a tool's start-up.
 *
 * No shell; stdin is /dev/null unless `input` is given; output is bounded;
 * on timeout the program gets SIGTERM, then SIGKILL after a grace period.
 * Never throws: the caller turns the outcome into its own error.
 */
export interface RunProgramOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** milliseconds; default 10 minutes */
  timeout?: number;
  /** written to the program's stdin; without it stdin is /dev/null */
  input?: string;
  /** most bytes kept of stdout, and of stderr; past it the program is stopped (`overflow`) */
  maxOutput: number;
  /** how stdout is decoded (default utf8): latin1 keeps each byte as one character, for file names that are not UTF-8 */
  stdoutEncoding?: 'utf8' | 'latin1';
}

export interface ProgramExit {
  exitCode: number | undefined;
  signal: NodeJS.Signals | undefined;
  /** stdout, its one final newline removed */
  stdout: string;
  /** stderr, its one final newline removed */
  stderr: string;
  timedOut: boolean;
  maxOutput: number;
  /** the stream that passed maxOutput (the program was stopped) */
  overflow?: 'stdout' | 'stderr';
  /** the program could not be started (ENOENT: not on PATH, or cwd missing) */
  spawnError?: NodeJS.ErrnoException;
}

/** How long a program has to clean up (git: its lock files) after SIGTERM before it is killed. */
const FORCE_KILL_AFTER_MS = 5_000;
/** How long the output of a stopped program is still read after it exited. */
const STOPPED_OUTPUT_GRACE_MS = 100;

/** What execa's stripFinalNewline did: one trailing newline (LF or CRLF) goes. */
function stripFinalNewline(text: string): string {
  if (!text.endsWith('\n')) return text;
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.slice(0, -1);
}

export function runProgram(cmd: string, args: string[], opts: RunProgramOptions): Promise<ProgramExit> {
  const { maxOutput } = opts;
  const childEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts.env ?? process.env)) if (value !== undefined) childEnv[name] = value;
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: childEnv,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const sizes = { stdout: 0, stderr: 0 };
    let timedOut = false;
    let overflow: ProgramExit['overflow'];
    let spawnError: NodeJS.ErrnoException | undefined;
    let forceKill: NodeJS.Timeout | undefined;
    let stopped = false;
    const stop = () => {
      stopped = true;
      child.kill('SIGTERM');
      forceKill ??= setTimeout(() => child.kill('SIGKILL'), FORCE_KILL_AFTER_MS);
    };
    // A process it started (git: an alias, a hook) can outlive a stopped
    // program and hold its stdout open: once the program is gone, stop waiting for it.
    child.on('exit', () => {
      if (!stopped) return;
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, STOPPED_OUTPUT_GRACE_MS).unref();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeout ?? 10 * 60_000);
    for (const name of ['stdout', 'stderr'] as const) {
      child[name]!.on('data', (chunk: Buffer) => {
        if (overflow) return;
        sizes[name] += chunk.length;
        if (sizes[name] > maxOutput) {
          overflow = name;
          stop();
          return;
        }
        chunks[name].push(chunk);
      });
    }
    if (opts.input !== undefined) {
      // The program may exit without reading all of its input (a failure): that is its exit status to report, not an EPIPE.
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (forceKill) clearTimeout(forceKill);
      const text = (name: 'stdout' | 'stderr') =>
        stripFinalNewline(Buffer.concat(chunks[name]).toString(name === 'stdout' ? opts.stdoutEncoding ?? 'utf8' : 'utf8'));
      resolve({
        exitCode: code ?? undefined,
        signal: signal ?? undefined,
        stdout: text('stdout'),
        stderr: text('stderr'),
        timedOut,
        maxOutput,
        ...(overflow ? { overflow } : {}),
        ...(spawnError ? { spawnError } : {}),
      });
    });
  });
}
