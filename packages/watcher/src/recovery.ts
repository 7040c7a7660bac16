import { execa } from 'execa';
import { EX, type Logger } from '@prompt-valet/core';

/**
 * Runs `pv-claim --recover`, one at a time: a request while one runs makes
 * one more run after it (requests coalesce). pv-watcher asks at start, at
 * stop, after a pipeline of its own ended without settling its claim, and at
 * each periodic rescan while claims of other lock holders exist.
 */
export class Recovery {
  private running: Promise<number> | undefined;
  private again = false;
  /**
   * Called after a run that recovered claims: the prompts it put back to
   * pending were claimable only once their records were gone, after the
   * file events that named them, so the claimers must look again.
   */
  onRecovered: (() => void) | undefined;

  constructor(
    private readonly claimBin: string,
    private readonly args: () => string[],
    /** the environment for each pv-claim --recover (the watcher's, with its current config handed down) */
    private readonly env: () => NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {}

  /** Run now (after the current run, if any); resolves to pv-claim's exit code. */
  async run(why: string): Promise<number> {
    while (this.running) await this.running;
    this.running = this.once(why);
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  /** Run soon; several requests while one runs make one more run. */
  request(why: string): void {
    if (this.running) {
      if (this.again) return;
      this.again = true;
      void this.running.then(() => {
        this.again = false;
        return this.run(why);
      });
      return;
    }
    void this.run(why);
  }

  /** Resolves once no recovery runs. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async once(why: string): Promise<number> {
    const res = await execa(this.claimBin, ['--recover', ...this.args()], {
      env: this.env(),
      reject: false,
      stdin: 'ignore',
      stderr: 'inherit',
      timeout: 10 * 60_000,
    });
    const n = String(res.stdout ?? '').split('\n').filter((l) => l.trim()).length;
    if (n > 0) {
      this.log.notice(`recovered ${n} claim(s) whose pipeline had died (${why})`);
      this.onRecovered?.();
    }
    if (res.exitCode === EX.CONFIG) {
      // pv-claim said which key is wrong (one line, above); nothing is lost: the next start recovers.
      this.log.warn(`recovery not run (${why}): the configuration is not valid now; the next start recovers`);
    } else if (res.exitCode !== 0) {
      this.log.error(`pv-claim --recover failed (${why}; exit ${res.exitCode ?? res.signal})`);
    }
    return res.exitCode ?? 1;
  }
}
