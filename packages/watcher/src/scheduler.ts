import type { Logger, PvRecord } from '@prompt-valet/core';
import type { PipelineFactory, PipelineLike } from './pipeline.js';
import { RunStateLog } from './run-states.js';

/** How long after a claim the next claimer is started ahead (see onClaim). */
const PRESTART_AFTER_CLAIM_MS = 1500;

/**
 * Hints kept at most: past this a burst is better served by the walk each
 * claimer falls back to (hints only order the work; they are not the truth).
 */
const MAX_HINTS = 256;

export interface SchedulerOptions {
  /** starts one pipeline (the real one spawns `pv-claim --wait | … | pv-settle` under a claim lock) */
  factory: PipelineFactory;
  /** agents running at once (the agent slots) */
  maxParallel: number;
  /**
   * pipelines beyond maxParallel that may claim, resolve and clone while
   * every slot is taken, then wait at the agent gate (default 0: a pipeline
   * per slot, as before slots existed)
   */
  prepareAhead?: number;
  log: Logger;
  /** --once: stop when nothing is left to claim and every run has ended */
  once: boolean;
  /** every pipeline that ended, and whether its claim (if any) was settled */
  onEnded?: (pipeline: PipelineLike, ended: { claimed: boolean; settled: boolean; code: number | null; signal: NodeJS.Signals | null }) => void;
  /** every record that came out of pv-settle (pv-watcher hands them to pv-notify) */
  onSettledRecord?: (rec: PvRecord) => void;
  /** ms to wait before replacing a waiting pipeline that died (default 5000) */
  restartDelayMs?: number;
  /** ms after a claim before the next claimer is started ahead (default 1500) */
  prestartAfterClaimMs?: number;
  /**
   * Whether the inbox holds anything a claimer could take (pv-watcher: core's
   * walk, in its own process). Asked before a claimer is sent to look again
   * after a claim and after a run that claimed something ends: a claimer
   * process that finds nothing costs more than the walk. Without it (and
   * with --once) a claimer always looks.
   */
  inboxHasWork?: () => Promise<boolean>;
}

/**
 * Keeps up to `maxParallel` agents running (docs/lifecycle.md, "Agent
 * slots"), with up to `maxParallel + prepareAhead` pipelines: the extra ones
 * claim, resolve and clone while the agents run, then wait at the agent
 * gate, so a slot set free is taken at once by a run that is ready.
 * Each pipeline starts with `pv-claim --limit 1`; one claimer walks the
 * inbox at a time and the next starts as soon as it has claimed, while
 * prompts named by file events get a claimer each at once (see claiming),
 * so a burst of prompts fills every pipeline within a few process
 * start-ups while an empty inbox costs one pv-claim per trigger.
 */
export class Scheduler {
  private readonly active = new Set<PipelineLike>();
  /** pipelines whose agent holds a slot */
  private readonly agentSlots = new Set<PipelineLike>();
  /** pipelines waiting at the agent gate, in the order they asked */
  private readonly agentQueue: { pipeline: PipelineLike; runId: string }[] = [];
  /**
   * pipelines whose pv-claim is looking. One walks the inbox at a time; more
   * start beside it only for prompts that file events named (hints), one
   * each, so a burst's first runs claim together rather than one claimer
   * start after another. Two claimers after one prompt is harmless (the
   * rename decides; the other walks on), only wasted work.
   */
  private readonly claiming = new Set<PipelineLike>();
  /** a pipeline started ahead, its pv-claim loaded and waiting for go */
  private warm: PipelineLike | undefined;
  private wanted = false;
  /** prompts file events named since the last claim started, tried first (oldest event first) */
  private readonly hints = new Set<string>();
  private stopping = false;
  private failedPipelines = 0;
  private readonly states: RunStateLog;
  private idleResolvers: (() => void)[] = [];

  constructor(private opts: SchedulerOptions) {
    this.states = new RunStateLog(opts.log);
  }

  /** The configuration was reloaded: both bounds apply at once (a slot set free is granted, more pipelines may start). */
  setMaxParallel(maxParallel: number, prepareAhead = this.opts.prepareAhead): void {
    this.opts = { ...this.opts, maxParallel, prepareAhead };
    this.grantAgentSlots();
    this.pump();
  }

  /** The configuration changed: the waiting pipeline was started with the old one. */
  configChanged(): void {
    this.warm?.cancel();
    this.warm = undefined;
    this.prestart();
  }

  get running(): number {
    return this.active.size;
  }

  /** agents holding a slot now */
  get agentsRunning(): number {
    return this.agentSlots.size;
  }

  /** runs waiting at the agent gate now */
  get agentsWaiting(): number {
    return this.agentQueue.length;
  }

  /**
   * Pipelines allowed now: maxParallel, and the prepareAhead more only while
   * every agent slot is taken. A burst from idle so first brings its first
   * maxParallel runs to their agents, instead of starting twice as many
   * pipelines together on the same cores (measured at max_parallel 4: the
   * fourth agent of a burst started 1.7 s in); the runs ahead are prepared
   * while those agents work.
   */
  private get pipelineCap(): number {
    const ahead = this.agentSlots.size >= this.opts.maxParallel ? (this.opts.prepareAhead ?? 0) : 0;
    return this.opts.maxParallel + ahead;
  }

  get failures(): number {
    return this.failedPipelines;
  }

  /** The claim locks of this watcher's pipelines (a claim naming another lock is someone else's). */
  lockIds(): Set<string> {
    const ids = new Set([...this.active].map((p) => p.lockId));
    if (this.warm) ids.add(this.warm.lockId);
    return ids;
  }

  /**
   * Something may be claimable: look as soon as a slot is free. `hint`, the
   * prompt a file event named, is handed to the claimer to try before it
   * walks the inbox (a name that cannot go on one line is left to the walk).
   */
  trigger(hint?: string): void {
    if (hint !== undefined && !/[\r\n]/.test(hint) && this.hints.size < MAX_HINTS) this.hints.add(hint);
    this.wanted = true;
    this.pump();
  }

  private pump(): void {
    while (!this.stopping && this.wanted && this.active.size < this.pipelineCap && (this.claiming.size === 0 || this.hints.size > 0)) {
      this.wanted = false;
      this.start();
    }
  }

  private start(): void {
    const pipeline = this.warm ?? this.spawn();
    this.warm = undefined;
    this.claiming.add(pipeline);
    this.active.add(pipeline);
    const [hint] = this.hints;
    if (hint !== undefined) this.hints.delete(hint);
    // Each named prompt gets its claimer (one event may come after this walk passed its folder).
    if (this.hints.size > 0) this.wanted = true;
    pipeline.go(hint);
  }

  /**
   * Start the next pipeline ahead of time (daemon mode), so that when a
   * prompt arrives its pv-claim has already paid its start-up.
   */
  prestart(): void {
    if (this.opts.once || this.stopping || this.warm) return;
    this.warm = this.spawn();
  }

  private spawn(): PipelineLike {
    const { log } = this.opts;
    let settled = false;
    const pipeline: PipelineLike = this.opts.factory({
      onClaim: (rec: PvRecord) => {
        this.claiming.delete(pipeline);
        this.states.track(rec);
        // The steps after the claim are starting now; starting the next
        // claimer a moment later keeps it from competing with them.
        setTimeout(() => this.prestart(), this.opts.prestartAfterClaimMs ?? PRESTART_AFTER_CLAIM_MS).unref();
        // More may be waiting: claim again while slots are free.
        this.lookAgain();
      },
      onNothingClaimed: () => {
        this.claiming.delete(pipeline);
        this.prestart();
        this.pump();
      },
      onSettled: async (rec: PvRecord) => {
        if (rec.settle) settled = true;
        this.opts.onSettledRecord?.(rec);
        // Report the steps' state changes first, so the log reads in order.
        if (rec.run_id) await this.states.flush(rec.run_id);
        const where = rec.target ? `${rec.target.owner}/${rec.target.repo}@${rec.target.branch}` : rec.claim?.rel ?? '';
        const state = rec.settle?.state ?? (rec.error ? 'error' : 'unsettled');
        const reason = rec.error ? ` ${rec.error.code}: ${rec.error.message}` : rec.publish?.pr_url ? ` ${rec.publish.pr_url}` : '';
        const line = `run ${rec.run_id ?? '?'} ${where} settled ${state}${reason}`;
        // A prompt that failed is what an operator looks for in journalctl -p err.
        if (state === 'error') log.error(line);
        else log.notice(line);
      },
      onAgentWait: (runId) => this.agentWaits(pipeline, runId),
      onAgentDone: () => this.agentDone(pipeline),
      onExit: (code, signal) => {
        this.opts.onEnded?.(pipeline, { claimed: pipeline.claim !== undefined, settled, code, signal });
        if (this.warm === pipeline) {
          // Died while waiting (e.g. killed): start another when needed.
          this.warm = undefined;
          if (!this.stopping) {
            // Not at once: a claimer that cannot start (a broken install)
            // must not turn into a tight loop of process start-ups.
            log.warn(`a waiting pipeline ended (${signal ?? `exit ${code}`}); starting another in 5 s`);
            setTimeout(() => this.prestart(), this.opts.restartDelayMs ?? 5000).unref();
          }
          return;
        }
        this.active.delete(pipeline);
        // Its gate closed with it; this frees its slot even if that was not reported.
        this.agentDone(pipeline);
        this.claiming.delete(pipeline);
        if (pipeline.claim?.run_id) void this.states.untrack(pipeline.claim.run_id);
        if (code !== 0) {
          this.failedPipelines++;
          log.error(`pipeline ${pipeline.claim?.run_id ?? '(no claim)'} ended with ${signal ?? `exit ${code}`}`);
        }
        // A prompt that waited for this one (same name) may be claimable now.
        if (pipeline.claim) this.lookAgain();
        else this.pump();
        // The run is over, its steps no longer start: the next claimer can load now
        // (a run shorter than prestartAfterClaimMs would otherwise leave none waiting).
        this.prestart();
        this.checkIdle();
      },
    });
    return pipeline;
  }

  /** pv-run-codex of `pipeline` asks for an agent slot: granted in the order asked, refused once stopping. */
  private agentWaits(pipeline: PipelineLike, runId: string): void {
    // Asking again means its earlier agent ended (one pv-run-codex may run several records).
    this.agentDone(pipeline);
    if (this.stopping) {
      this.opts.log.debug(`run ${runId}: no agent slot, stopping: the run goes back to pending`);
      pipeline.refuseAgent();
      return;
    }
    this.agentQueue.push({ pipeline, runId });
    this.grantAgentSlots();
    // Said once per run that has to wait: its state stays "cloned" meanwhile, which alone would look stuck.
    if (this.agentQueue.some((w) => w.pipeline === pipeline)) {
      this.opts.log.info(`run ${runId} waiting for an agent slot (${this.agentSlots.size} of ${this.opts.maxParallel} in use, ${this.agentQueue.length} waiting)`);
    }
  }

  /** The agent of `pipeline` ended, or it no longer waits (its gate said done or closed). */
  private agentDone(pipeline: PipelineLike): void {
    const queued = this.agentQueue.findIndex((w) => w.pipeline === pipeline);
    if (queued >= 0) this.agentQueue.splice(queued, 1);
    if (this.agentSlots.delete(pipeline)) this.grantAgentSlots();
  }

  private grantAgentSlots(): void {
    while (!this.stopping && this.agentSlots.size < this.opts.maxParallel && this.agentQueue.length > 0) {
      const next = this.agentQueue.shift()!;
      this.agentSlots.add(next.pipeline);
      this.opts.log.debug(`run ${next.runId} gets an agent slot (${this.agentSlots.size} of ${this.opts.maxParallel} in use, ${this.agentQueue.length} waiting)`);
      next.pipeline.grantAgent();
    }
    // Every slot taken: the runs ahead may start now (pipelineCap).
    this.pump();
  }

  /**
   * Send a claimer to walk the inbox, or, with inboxHasWork, only when that
   * walk sees something. Prompts named by file events (hints) go as before.
   */
  private lookAgain(): void {
    const check = this.opts.once ? undefined : this.opts.inboxHasWork;
    if (!check) {
      this.wanted = true;
      this.pump();
      return;
    }
    this.pump();
    void check().then((seen) => {
      if (!seen || this.stopping) return;
      this.wanted = true;
      this.pump();
    });
  }

  private checkIdle(): void {
    if (this.active.size === 0 && this.claiming.size === 0 && (!this.wanted || this.stopping)) {
      const resolvers = this.idleResolvers;
      this.idleResolvers = [];
      for (const r of resolvers) r();
    }
  }

  /** Resolves when nothing runs and nothing is wanted (used by --once and by shutdown). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleResolvers.push(resolve);
      this.checkIdle();
    });
  }

  /**
   * Graceful stop: claim nothing more; runs waiting at the agent gate (now
   * or later) are told at once not to start their agent (they go back to
   * pending, not counted); let running agents finish for `graceMs`; then
   * ask each agent to stop (pv-run-codex settles its prompt back to
   * pending); after `killAfterMs` more, kill what is left (pv-claim
   * --recover then puts those prompts back).
   */
  async shutdown(graceMs: number, killAfterMs: number): Promise<void> {
    this.stopping = true;
    this.wanted = false;
    this.warm?.cancel();
    this.warm = undefined;
    const { log } = this.opts;
    const waiting = this.agentQueue.splice(0);
    if (waiting.length > 0) log.notice(`stopping: ${waiting.length} run(s) waiting for an agent slot go back to pending`);
    for (const w of waiting) w.pipeline.refuseAgent();
    if (this.active.size > 0) {
      log.notice(`stopping: waiting up to ${graceMs / 1000}s for ${this.active.size} run(s)`);
    }
    const idle = this.idle();
    const graceOver = await Promise.race([idle.then(() => false), sleep(graceMs).then(() => true)]);
    if (graceOver) {
      for (const p of this.active) {
        const n = p.stopAgent();
        log.notice(`run ${p.claim?.run_id ?? '?'}: grace period over, ${n ? 'stopping the agent' : 'waiting for its step to end'}`);
      }
      const killNeeded = await Promise.race([idle.then(() => false), sleep(killAfterMs).then(() => true)]);
      if (killNeeded) {
        for (const p of this.active) {
          log.warn(`run ${p.claim?.run_id ?? '?'}: still running after ${killAfterMs / 1000}s more, killing its pipeline`);
          p.kill('SIGKILL');
        }
        await Promise.race([idle, sleep(5000)]);
      }
    }
    this.states.stop();
  }

  /** Immediate stop for a second signal. */
  killAll(): void {
    this.warm?.kill('SIGKILL');
    for (const p of this.active) p.kill('SIGKILL');
  }
}

/** A sleep that does not keep the process alive once everything else is done. */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
