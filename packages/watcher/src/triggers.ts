import * as fs from 'node:fs';
import * as path from 'node:path';
import { isCompletePrompt, listInboxPrompts, type Logger } from '@prompt-valet/core';
import { FolderWatch } from './folder-watch.js';

/**
 * When to look for work: filesystem notifications are the fast trigger, a
 * periodic full rescan is the truth (events can be missed: overflow, network
 * filesystems, a watch that failed), and a prompt that is still settling is
 * looked at again once its settle window has passed.
 */
export interface TriggerOptions {
  inbox: string;
  rescanMs: number;
  settleMs: number;
  log: Logger;
  /** `rel`: the prompt an event named, relative to the inbox (a hint: the walk stays the truth) */
  onTrigger: (why: 'event' | 'settled' | 'rescan', rel?: string) => void;
  /** every rescan tick, whether or not it found work (pv-watcher looks for abandoned claims) */
  onRescan?: () => void;
}

/**
 * Whether a claimer has anything to look at: core's walk of the inbox, in
 * this process, sees a complete prompt, or a folder it cannot read (which
 * pv-claim reports). A walk that fails says yes: pv-claim looks and reports.
 * Cheaper than starting a claimer to find nothing (~45 ms of CPU for the
 * process; the walk over 5,000 folders costs ~40 ms, over a few ~0.1 ms).
 */
export async function inboxHasWork(inbox: string, settleMs: number, log: Logger): Promise<boolean> {
  let problems = 0;
  try {
    const prompts = await listInboxPrompts(inbox, { onProblem: () => problems++ });
    return problems > 0 || prompts.some((p) => isCompletePrompt(p, settleMs / 1000));
  } catch (err) {
    log.warn(`walk of ${inbox}: ${(err as Error).message}; letting pv-claim look`);
    return true;
  }
}

export class Triggers {
  private watcher: FolderWatch | undefined;
  /** folders already reported as not watchable (said once, not at every rescan) */
  private readonly reported = new Set<string>();
  private rescan: NodeJS.Timeout | undefined;
  private settleTimers = new Set<NodeJS.Timeout>();
  private opts: TriggerOptions;

  constructor(opts: TriggerOptions) {
    this.opts = opts;
  }

  start(): void {
    this.watch();
    // This interval is what keeps a daemon alive between events.
    this.rescan = setInterval(() => void this.rescanTick(), this.opts.rescanMs);
  }

  update(rescanMs: number, settleMs: number): void {
    this.opts = { ...this.opts, rescanMs, settleMs };
    if (this.rescan) {
      clearInterval(this.rescan);
      this.rescan = setInterval(() => void this.rescanTick(), rescanMs);
    }
  }

  /**
   * The periodic full walk, done here rather than by a claimer: only when it
   * sees a complete prompt (or a folder it cannot read, which pv-claim
   * reports) is a claimer told to go. An idle inbox then costs one walk per
   * rescan, not a claimer's walk plus the start of the next waiting claimer.
   */
  private async rescanTick(): Promise<void> {
    this.opts.onRescan?.();
    // Folders events did not tell about (made while a watch was being set up, or by a
    // rename of a whole tree) get their watch now.
    this.watcher?.sync();
    if (await inboxHasWork(this.opts.inbox, this.opts.settleMs, this.opts.log)) this.opts.onTrigger('rescan');
  }

  private watch(): void {
    this.watcher = new FolderWatch(
      this.opts.inbox,
      (dir, name) => {
        // Our own renames (.running.md, .done.md) and unrelated files are
        // not new work; a rename *into* x.prompt.md is (uploads, retries).
        if (name !== null && !name.endsWith('.prompt.md')) return;
        // A name that is gone is not new work: a claim's own unlink of
        // x.prompt.md (after linking x.running.md) is such an event, and it
        // used to start a claimer that found nothing, once per run.
        if (name !== null && !fs.existsSync(path.join(dir, name))) return;
        const rel = name === null ? undefined : path.relative(this.opts.inbox, path.join(dir, name));
        this.opts.onTrigger('event', rel);
        this.afterSettle(rel);
      },
      (message) => {
        if (this.reported.has(message)) return;
        this.reported.add(message);
        this.opts.log.warn(`${message}; prompts there are found by the rescan every ${this.opts.rescanMs / 1000}s`);
      },
    );
    this.watcher.sync();
  }

  /** Look again once a prompt that just changed has had time to settle. */
  private afterSettle(rel: string | undefined): void {
    if (this.opts.settleMs <= 0) return;
    const t = setTimeout(() => {
      this.settleTimers.delete(t);
      this.opts.onTrigger('settled', rel);
    }, this.opts.settleMs + 50);
    t.unref();
    this.settleTimers.add(t);
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.rescan) clearInterval(this.rescan);
    for (const t of this.settleTimers) clearTimeout(t);
    this.settleTimers.clear();
  }
}
