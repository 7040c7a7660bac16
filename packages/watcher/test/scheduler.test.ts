import t from 'tap';
import type { Logger, PvRecord } from '@prompt-valet/core';
import type { PipelineHandlers, PipelineLike } from '../src/pipeline.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler.js';

/** A pipeline the test drives by hand: it claims, finds nothing, settles and exits when told to. */
class FakePipeline implements PipelineLike {
  claim: PvRecord | undefined;
  readonly lockId: string;
  went = false;
  cancelled = false;
  killedWith: NodeJS.Signals | undefined;
  agentsStopped = 0;
  constructor(private readonly h: PipelineHandlers, n: number) {
    this.lockId = `fake-${n}`;
  }
  go(): void {
    this.went = true;
  }
  cancel(): void {
    this.cancelled = true;
  }
  stopAgent(): number {
    this.agentsStopped++;
    return 1;
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.killedWith = signal;
  }
  claims(runId: string): void {
    this.claim = { v: 1, run_id: runId, claim: { inbox: '/i', rel: `r/${runId}.running.md`, path: '', prompt_name: '', prompt_rel: '', run_root: '', attempt: 1, claimed_at: '' } };
    this.h.onClaim(this.claim);
  }
  findsNothing(): void {
    this.h.onNothingClaimed();
  }
  settles(): void {
    this.h.onSettled({ ...this.claim!, settle: { state: 'done', path: '/f' } });
  }
  exits(code: number | null = 0, signal: NodeJS.Signals | null = null): void {
    this.h.onExit(code, signal);
  }
}

const quiet: Logger = { tool: 'test', error() {}, warn() {}, notice() {}, info() {}, debug() {} };

function scheduler(over: Partial<SchedulerOptions> = {}) {
  const made: FakePipeline[] = [];
  const ended: { lockId: string; claimed: boolean; settled: boolean; code: number | null }[] = [];
  const s = new Scheduler({
    factory: (h) => {
      const p = new FakePipeline(h, made.length);
      made.push(p);
      return p;
    },
    maxParallel: 2,
    log: quiet,
    once: false,
    onEnded: (p, how) => ended.push({ lockId: p.lockId, claimed: how.claimed, settled: how.settled, code: how.code }),
    restartDelayMs: 20,
    prestartAfterClaimMs: 10,
    ...over,
  });
  return { s, made, ended };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

t.test('slots: one claimer at a time, never more pipelines than max_parallel', async (t) => {
  const { s, made } = scheduler({ once: true });
  s.trigger();
  t.equal(made.length, 1, 'one claimer started');
  t.ok(made[0]!.went, 'and told to go');
  s.trigger();
  t.equal(made.length, 1, 'no second claimer while one claims');
  made[0]!.claims('run-a');
  t.equal(made.length, 2, 'after a claim, the next claimer starts');
  made[1]!.claims('run-b');
  t.equal(s.running, 2);
  t.equal(made.length, 2, 'slots full: nothing more started');
  made[0]!.settles();
  made[0]!.exits(0);
  t.equal(made.length, 3, 'a free slot: look again');
  made[2]!.findsNothing();
  made[2]!.exits(0);
  made[1]!.settles();
  made[1]!.exits(0);
  t.equal(made.length, 4, 'the end of a claimed run looks once more (a same-name prompt may wait)');
  made[3]!.findsNothing();
  made[3]!.exits(0);
  await s.idle();
  t.pass('idle once nothing runs and nothing is wanted');
});

t.test('a warm pipeline is started ahead and used by the next trigger', async (t) => {
  const { s, made } = scheduler();
  s.trigger();
  made[0]!.findsNothing();
  t.equal(made.length, 2, 'after nothing was claimed, one is started ahead');
  t.notOk(made[1]!.went, 'it waits for go');
  made[0]!.exits(0);
  s.trigger();
  t.equal(made.length, 2, 'the trigger used the waiting pipeline');
  t.ok(made[1]!.went);
  t.same([...s.lockIds()].sort(), ['fake-1', 'fake-2'].filter((id) => made.some((p) => p.lockId === id)).sort(), 'lock ids of its pipelines');
  made[1]!.findsNothing();
  made[1]!.exits(0);
  await s.shutdown(100, 100);
});

t.test('after a claim and after a run, a claimer is sent to look again only when the walk in the watcher sees work', async (t) => {
  let work = false;
  let asked = 0;
  const { s, made } = scheduler({
    maxParallel: 2,
    prestartAfterClaimMs: 60_000,
    inboxHasWork: async () => {
      asked++;
      return work;
    },
  });
  s.trigger('r/main/a.prompt.md');
  made[0]!.claims('run-a');
  await tick();
  t.equal(asked, 1, 'the claim makes the watcher look');
  t.equal(made.length, 1, 'nothing seen: no claimer started to walk for nothing');
  made[0]!.settles();
  made[0]!.exits(0);
  await tick();
  t.equal(asked, 2, 'the end of a run that claimed makes the watcher look');
  t.equal(made.length, 2, 'still nothing seen: no claimer walks; the next one is started ahead');
  t.notOk(made[1]!.went, 'and waits for go');

  s.trigger('r/main/b.prompt.md');
  t.equal(made.length, 2, 'a file event sends the waiting claimer at once');
  t.ok(made[1]!.went);
  work = true;
  made[1]!.claims('run-b');
  await tick();
  t.equal(made.length, 3, 'the walk sees a complete prompt: a claimer goes');
  t.ok(made[2]!.went);
  made[2]!.findsNothing();
  made[2]!.exits(0);
  made[1]!.settles();
  made[1]!.exits(0);
  await s.shutdown(100, 100);
});

t.test('a waiting pipeline that dies is replaced after a delay (re-arm), not in a tight loop', async (t) => {
  const { s, made } = scheduler();
  s.prestart();
  t.equal(made.length, 1);
  made[0]!.exits(null, 'SIGKILL');
  t.equal(made.length, 1, 'not at once');
  await tick(60);
  t.equal(made.length, 2, 're-armed after the delay');
  await s.shutdown(100, 100);
  t.ok(made[1]!.cancelled, 'shutdown cancels the waiting pipeline');
});

t.test('failures: a pipeline that fails is counted; onEnded says whether its claim was settled', async (t) => {
  const { s, made, ended } = scheduler({ once: true });
  s.trigger();
  made[0]!.claims('run-a');
  made[0]!.exits(1);
  for (const p of made.slice(1)) {
    p.findsNothing();
    p.exits(0);
  }
  made.at(-1)!.findsNothing();
  made.at(-1)!.exits(0);
  await s.idle();
  t.equal(s.failures, 1);
  t.match(ended, [
    { lockId: 'fake-0', claimed: true, settled: false, code: 1 },
    { lockId: 'fake-1', claimed: false, settled: false, code: 0 },
  ]);
});

t.test('shutdown: waits for runs, then stops agents, then kills', async (t) => {
  const { s, made } = scheduler();
  s.trigger();
  made[0]!.claims('run-a');
  made[1]!.findsNothing();
  made[1]!.exits(0);
  const started = made.filter((p) => p.went).length;
  const done = s.shutdown(30, 30);
  s.trigger();
  t.equal(made.filter((p) => p.went).length, started, 'nothing new claimed once stopping');
  await tick(45);
  t.equal(made[0]!.agentsStopped, 1, 'grace over: its agent is asked to stop');
  await tick(40);
  t.equal(made[0]!.killedWith, 'SIGKILL', 'still running: killed');
  made[0]!.exits(null, 'SIGKILL');
  await done;
  t.equal(s.running, 0);
});
