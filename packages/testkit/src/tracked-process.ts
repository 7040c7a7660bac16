import { spawn, type ChildProcess } from 'node:child_process';

/** A long-lived tool a test starts (pv-watcher, pv-queue work/recv) and must not leave running. */
export interface TrackedProcess {
  child: ChildProcess;
  /** everything it wrote to stderr so far */
  stderr(): string;
  /** everything it wrote to stdout so far ('' when stdout was not kept) */
  stdout(): string;
  /** SIGTERM (or `signal`) and wait for the exit, SIGKILL after `timeoutMs`; resolves to the exit code */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Start `file args…` with its output collected. A test that dies without
 * stopping it does not leave it running: it is killed when the test process exits.
 */
export function startTrackedProcess(file: string, args: string[], env: NodeJS.ProcessEnv, opts: { keepStdout?: boolean } = {}): TrackedProcess {
  const child = spawn(file, args, { env, stdio: ['ignore', opts.keepStdout === false ? 'ignore' : 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      process.off('exit', reap);
      resolve(code);
    }),
  );
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 60_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
