import { expectErrno, type Logger, type PvRecord, readRunStatus, type RunStatus } from '@prompt-valet/core';

/**
 * One log line per state change per run, read from the run's status.json
 * (the steps write it; the watcher only reports it). Polled only while runs
 * are active, so an idle watcher does no work here.
 */
export class RunStateLog {
  private runs = new Map<string, { root: string; seen: number; label: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger, private readonly everyMs = 500) {}

  track(rec: PvRecord): void {
    const id = rec.run_id;
    const root = rec.claim?.run_root;
    if (!id || !root) return;
    this.runs.set(id, { root, seen: 0, label: rec.claim?.rel ?? id });
    this.timer ??= setInterval(() => void this.poll(), this.everyMs);
  }

  async untrack(id: string): Promise<void> {
    await this.pollOne(id);
    this.runs.delete(id);
    if (this.runs.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Log what changed for one run now. */
  async flush(id: string): Promise<void> {
    await this.pollOne(id);
  }

  private async poll(): Promise<void> {
    await Promise.all([...this.runs.keys()].map((id) => this.pollOne(id)));
  }

  private async pollOne(id: string): Promise<void> {
    const run = this.runs.get(id);
    if (!run) return;
    let status: RunStatus | undefined;
    try {
      status = await readRunStatus(run.root);
    } catch (err) {
      if (!(err instanceof SyntaxError)) expectErrno(err, 'ENOENT');
      return; // mid-write or removed; the next poll will tell
    }
    if (!status) return;
    for (const entry of status.history.slice(run.seen)) {
      const where = status.repo ? `${status.owner}/${status.repo}@${status.branch}` : run.label;
      const reason = entry.reason ? ` ${entry.reason}` : '';
      this.log.info(`run ${id} ${where} ${entry.state}${reason}`);
    }
    run.seen = status.history.length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
