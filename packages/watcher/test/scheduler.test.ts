import t from 'tap';
import type { Logger, PvRecord } from '@prompt-valet/core';
import type { PipelineHandlers, PipelineLike } from '../src/pipeline.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler.js';

/** A pipeline the test drives by hand: it claims, finds nothing, settles and exits when told to. */
class FakePipeline implements PipelineLike {
  claim: PvRecord | undefined;
  readonly lockId: string;
  went = false;
  /** the prompt the go line named, if any */
  hint: string | undefined;
  cancelled = false;
  killedWith: NodeJS.Signals | undefined;
  agentsStopped = 0;
  /** go lines the watcher wrote on the gate */
  granted = 0;
  refused = false;
  ended = false;
  constructor(private readonly h: PipelineHandlers, n: number) {
    this.lockId = `fake-${n}`;
  }
  go(hint?: string): void {
    this.went = true;
    this.hint = hint;
  }
  cancel(): void {
    this.cancelled = true;
  }
  stopAgent(): number {
    this.agentsStopped++;
    return 1;
  }
  grantAgent(): void {
    this.granted++;
  }
  refuseAgent(): void {
    this.refused = true;
  }
  /** pv-run-codex asks for an agent slot */
  waitsForAgent(): void {
    this.h.onAgentWait(this.claim?.run_id ?? '?');
  }
  /** the agent ended (done on the gate, or the gate closed) */
  agentEnds(): void {
    this.h.onAgentDone();
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
    this.ended = true;
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

/** Claimers sent to look (while others end) find nothing, until none is left. */
function drain(made: FakePipeline[]): void {
  for (let p = made.find((q) => q.went && !q.ended && !q.claim); p; p = made.find((q) => q.went && !q.ended && !q.claim)) {
    p.findsNothing();
    p.exits(0);
  }
}

/** A claimed pipeline that reached the agent gate. */
/** Every run's agent ends, it settles and its pipeline exits; then the scheduler goes idle. */
async function finishAll(s: Scheduler, made: FakePipeline[]): Promise<void> {
  for (const p of made) {
    p.agentEnds();
    p.settles();
    p.exits(0);
  }
  drain(made);
  await s.idle();
}

function claimAndWait(p: FakePipeline, runId: string): void {
  p.claims(runId);
  p.waitsForAgent();
}

t.test('agent slots: max_parallel agents at once, max_parallel + prepare_ahead pipelines, granted in the order asked', async (t) => {
  const { s, made } = scheduler({ once: true, maxParallel: 2, prepareAhead: 2 });
  s.trigger();
  for (let i = 0; i < 4; i++) claimAndWait(made[i]!, `run-${i}`);
  t.equal(s.running, 4, '4 pipelines: 2 slots + 2 ahead');
  t.equal(made.length, 4, 'no fifth pipeline while 4 run');
  t.same(made.map((p) => p.granted), [1, 1, 0, 0], 'the first two to ask got a slot; the others wait');
  t.equal(s.agentsRunning, 2);
  t.equal(s.agentsWaiting, 2);

  made[1]!.agentEnds();
  t.same(made.map((p) => p.granted), [1, 1, 1, 0], 'a slot set free goes to the run that asked first');
  t.equal(made.length, 4, 'its pipeline (publishing now) still counts against the pipelines');
  made[1]!.settles();
  made[1]!.exits(0);
  t.equal(made.length, 5, 'the pipeline ended: the next claimer starts');
  claimAndWait(made[4]!, 'run-4');
  t.same(made.map((p) => p.granted), [1, 1, 1, 0, 0], 'slots full: the new run waits behind run-3');
  made[0]!.agentEnds();
  t.same(made.map((p) => p.granted), [1, 1, 1, 1, 0], 'FIFO: run-3 before run-4');
  made[2]!.agentEnds();
  t.same(made.map((p) => p.granted), [1, 1, 1, 1, 1]);
  t.equal(s.agentsRunning, 2, 'never more than max_parallel agents');
  for (const p of [made[0]!, made[2]!, made[3]!, made[4]!]) {
    p.agentEnds();
    p.settles();
    p.exits(0);
  }
  drain(made);
  await s.idle();
  t.equal(s.agentsRunning, 0);
});

t.test('agent slots: a burst from idle starts the runs ahead only once every slot is taken', async (t) => {
  const { s, made } = scheduler({ once: true, maxParallel: 2, prepareAhead: 2 });
  s.trigger();
  made[0]!.claims('run-0');
  made[1]!.claims('run-1');
  t.equal(made.length, 2, 'two pipelines claim, resolve and clone; none ahead yet (they would share the cores)');
  made[0]!.waitsForAgent();
  t.equal(made.length, 2, 'one slot still free: still none ahead');
  made[1]!.waitsForAgent();
  t.same(made.slice(0, 2).map((p) => p.granted), [1, 1], 'both runs reached their agents');
  t.equal(made.length, 3, 'every slot taken: the first run ahead starts');
  made[2]!.claims('run-2');
  t.equal(made.length, 4, 'and the second');
  made[3]!.claims('run-3');
  t.equal(made.length, 4, 'max_parallel + prepare_ahead pipelines, no more');
  made[2]!.waitsForAgent();
  made[3]!.waitsForAgent();
  t.same(made.map((p) => p.granted), [1, 1, 0, 0], 'the runs ahead wait at the gate');
  made[0]!.agentEnds();
  t.same(made.map((p) => p.granted), [1, 1, 1, 0], 'a slot set free goes to the run ready for it');
  await finishAll(s, made);
});

t.test('prompts named by file events get a claimer each at once; the walk stays one at a time', async (t) => {
  const { s, made } = scheduler({ once: true, maxParallel: 4, prepareAhead: 0 });
  s.trigger('a/main/x.prompt.md');
  s.trigger('a/main/y.prompt.md');
  s.trigger('b/main/z.prompt.md');
  t.same(made.map((p) => p.hint), ['a/main/x.prompt.md', 'a/main/y.prompt.md', 'b/main/z.prompt.md'], 'three named prompts, three claimers, none waiting for another');
  s.trigger();
  t.equal(made.length, 3, 'a trigger naming nothing (a walk) waits while claimers look');
  made[0]!.claims('run-0');
  made[1]!.claims('run-1');
  made[2]!.findsNothing();
  t.equal(made.length, 4, 'then one claimer walks');
  t.equal(made[3]!.hint, undefined);
  s.trigger('c/main/w.prompt.md');
  t.equal(made.length, 4, 'never more pipelines than allowed (4 slots, no ahead)');
  for (const p of made) {
    if (p === made[2]) {
      p.exits(0);
      continue;
    }
    if (p !== made[0] && p !== made[1]) p.findsNothing();
    p.settles();
    p.exits(0);
  }
  drain(made);
  await s.idle();
});

t.test('agent slots: a pipeline that ends while holding a slot, or while waiting, frees it', async (t) => {
  const { s, made } = scheduler({ maxParallel: 1, prepareAhead: 2, prestartAfterClaimMs: 60_000 });
  s.trigger();
  claimAndWait(made[0]!, 'run-0');
  claimAndWait(made[1]!, 'run-1');
  claimAndWait(made[2]!, 'run-2');
  t.same(made.map((p) => p.granted), [1, 0, 0]);
  made[1]!.exits(null, 'SIGKILL');
  t.equal(s.agentsWaiting, 1, 'a waiting run that died leaves the queue');
  made[0]!.exits(null, 'SIGKILL');
  t.same(made.slice(0, 3).map((p) => p.granted), [1, 0, 1], 'killed with its slot (no done said): the slot goes to the next waiting run');
  t.equal(s.agentsRunning, 1);
  made[2]!.agentEnds();
  made[2]!.agentEnds();
  t.equal(s.agentsRunning, 0, 'done and then the gate closing free one slot, once');
  made[2]!.settles();
  made[2]!.exits(0);
  drain(made);
  await s.shutdown(100, 100);
});

t.test('prepare_ahead 0: a pipeline per slot, and each run gets its slot at once', async (t) => {
  const { s, made } = scheduler({ once: true, maxParallel: 2, prepareAhead: 0 });
  s.trigger();
  claimAndWait(made[0]!, 'run-0');
  claimAndWait(made[1]!, 'run-1');
  t.equal(made.length, 2, 'max_parallel pipelines, no more');
  t.same(made.map((p) => p.granted), [1, 1], 'no run waits');
  await finishAll(s, made);
});

t.test('a reload that raises max_parallel grants waiting runs at once; one that lowers it lets running agents finish', async (t) => {
  const { s, made } = scheduler({ maxParallel: 1, prepareAhead: 1, prestartAfterClaimMs: 60_000 });
  s.trigger();
  claimAndWait(made[0]!, 'run-0');
  claimAndWait(made[1]!, 'run-1');
  t.same(made.map((p) => p.granted), [1, 0]);
  s.setMaxParallel(2, 1);
  t.same(made.slice(0, 2).map((p) => p.granted), [1, 1], 'the waiting run got the new slot');
  t.equal(made.length, 3, 'and a third pipeline may claim ahead');
  claimAndWait(made[2]!, 'run-2');
  s.setMaxParallel(1, 0);
  made[0]!.agentEnds();
  t.equal(made[2]!.granted, 0, 'lowered to 1: one agent still runs, so run-2 waits');
  made[1]!.agentEnds();
  t.equal(made[2]!.granted, 1, 'the last running agent ended: run-2 starts');
  for (const p of made.slice(0, 3)) {
    p.agentEnds();
    p.settles();
    p.exits(0);
  }
  drain(made);
  await s.shutdown(100, 100);
});

t.test('shutdown: runs waiting for a slot are refused at once, and so is any that asks later; running agents get the grace period', async (t) => {
  const { s, made } = scheduler({ maxParallel: 1, prepareAhead: 2, prestartAfterClaimMs: 60_000 });
  s.trigger();
  claimAndWait(made[0]!, 'run-0');
  claimAndWait(made[1]!, 'run-1');
  made[2]!.claims('run-2');
  const done = s.shutdown(1000, 1000);
  t.ok(made[1]!.refused, 'the waiting run is told not to start its agent');
  t.notOk(made[0]!.refused, 'the running agent is not touched');
  made[2]!.waitsForAgent();
  t.ok(made[2]!.refused, 'a run reaching the gate after the stop is refused too');
  made[0]!.agentEnds();
  t.equal(made[2]!.granted, 0, 'a slot set free during the stop is given to nobody');
  t.equal(made[0]!.agentsStopped, 0, 'within the grace period');
  for (const p of made.slice(0, 3)) {
    p.agentEnds();
    p.settles();
    p.exits(0);
  }
  await done;
  t.equal(s.running, 0);
});
