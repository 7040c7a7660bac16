/**
 * pv-watcher's signals, caught from the moment this module is evaluated
 * (the bin imports it before anything else). A SIGHUP or SIGTERM that
 * arrives while the watcher is still starting (recovering claims, loading
 * tools) is kept, and handled once the watcher is ready: a reload after the
 * start, a clean stop. Without this, Node's default action for SIGHUP would
 * end the watcher.
 */
export type WatcherSignal = 'SIGHUP' | 'SIGTERM' | 'SIGINT';

const WATCHED: WatcherSignal[] = ['SIGHUP', 'SIGTERM', 'SIGINT'];

export class SignalInbox {
  private queued: WatcherSignal[] = [];
  private handler: ((s: WatcherSignal) => void) | undefined;
  private readonly listener = (s: NodeJS.Signals) => this.receive(s as WatcherSignal);

  install(): this {
    for (const s of WATCHED) process.on(s, this.listener);
    return this;
  }

  /** Signals that arrived before a handler was attached, oldest first. */
  get pending(): readonly WatcherSignal[] {
    return this.queued;
  }

  receive(s: WatcherSignal): void {
    if (this.handler) this.handler(s);
    else this.queued.push(s);
  }

  /** Hand every signal to `handler` from now on, the queued ones first. */
  attach(handler: (s: WatcherSignal) => void): void {
    this.handler = handler;
    const queued = this.queued;
    this.queued = [];
    for (const s of queued) handler(s);
  }

  /** Stop handling: queue again (signals during the final steps are not fatal). */
  detach(): void {
    this.handler = undefined;
  }

  uninstall(): void {
    for (const s of WATCHED) process.off(s, this.listener);
  }
}

/** The inbox the bin installed first; main takes it over. */
export const earlySignals = new SignalInbox().install();
