import { spawn, type ChildProcess } from 'node:child_process';
import { formatRecord, type Logger, type PvRecord } from '@prompt-valet/core';

/**
 * The watcher's end of `pv-settle | pv-notify`. Every pipeline's settled
 * records already come back to the watcher, so one long-lived pv-notify is
 * fed from here instead of a pv-notify per pipeline: a webhook that hangs
 * then never holds a pipeline (and its max_parallel slot) open while
 * pv-notify drains, and no run pays one more process start. By hand the
 * pipe is the same: `… | pv-settle | pv-notify`.
 */
export interface NotifierOptions {
  /** pv-notify's path */
  bin: string;
  /** `--config FILE`, when there is one */
  configArgs: string[];
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** how long to wait for pv-notify to drain at close (its own bound plus a margin) */
  closeTimeoutMs: number;
}

export class Notifier {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  constructor(private readonly opts: NotifierOptions) {}

  /** Hand one settled record to pv-notify (started on first use). Never blocks the caller. */
  send(rec: PvRecord): void {
    const child = this.child ?? this.start();
    if (!child.stdin || child.stdin.destroyed) return;
    child.stdin.write(formatRecord(rec));
  }

  private start(): ChildProcess {
    const { bin, configArgs, env, log } = this.opts;
    // Its stdout is the records again: nobody reads them here.
    const child = spawn(bin, configArgs, { env, stdio: ['pipe', 'ignore', 'inherit'] });
    child.stdin?.on('error', () => undefined); // pv-notify gone: its exit is logged below
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (code !== 0) log.warn(`pv-notify ended with ${signal ?? `exit ${code}`}; the next settled run starts another`);
        resolve();
      });
      child.once('error', (err) => {
        if (this.child === child) this.child = undefined;
        log.error(`cannot run pv-notify: ${err.message}`);
        resolve();
      });
    });
    this.child = child;
    return child;
  }

  /** End pv-notify's input and wait (bounded) while it sends what it has. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      this.exited!.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.opts.closeTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (gaveUp) child.kill('SIGKILL');
  }
}
