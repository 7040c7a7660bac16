import t from 'tap';
import type { Logger, PvRecord } from '@prompt-valet/core';
import type { PipelineHandlers, PipelineLike } from '../src/pipeline.js';
import { Scheduler } from '../src/scheduler.js';

// The prompt a file event named reaches the claimer's go line (`go <rel>`),
// each name once, in event order; triggers without a name walk.

class HintedPipeline implements PipelineLike {
  claim: PvRecord | undefined;
  readonly lockId: string;
  /** undefined until go; then the hint it was given ('' for none) */
  wentWith: string | undefined;
  constructor(private readonly h: PipelineHandlers, n: number) {
    this.lockId = `fake-${n}`;
  }
  go(hint?: string): void {
    this.wentWith = hint ?? '';
  }
  cancel(): void {}
  grantAgent(): void {}
  refuseAgent(): void {}
  stopAgent(): number {
    return 0;
  }
  kill(): void {}
  findsNothing(): void {
    this.h.onNothingClaimed();
    this.h.onExit(0, null);
  }
}

const quiet: Logger = { tool: 'test', error() {}, warn() {}, notice() {}, info() {}, debug() {} };

t.test('each claimer is told one named prompt, oldest event first; then plain walks', async (t) => {
  const made: HintedPipeline[] = [];
  const s = new Scheduler({
    factory: (h) => {
      const p = new HintedPipeline(h, made.length);
      made.push(p);
      return p;
    },
    maxParallel: 1,
    log: quiet,
    once: true,
  });
  s.trigger(); // the rescan at start: a plain walk
  // While that claimer looks: a name, the same name again (a write after the rename), a second one, one that cannot go on a line.
  s.trigger('widget/main/a.prompt.md');
  s.trigger('widget/main/a.prompt.md');
  s.trigger('widget/dev/b.prompt.md');
  s.trigger('widget/main/two\nlines.prompt.md');
  t.same(made.map((p) => p.wentWith), ['']);
  made[0]!.findsNothing();
  t.same(made.map((p) => p.wentWith), ['', 'widget/main/a.prompt.md']);
  made[1]!.findsNothing();
  t.same(made.map((p) => p.wentWith), ['', 'widget/main/a.prompt.md', 'widget/dev/b.prompt.md'], 'each name once');
  made[2]!.findsNothing();
  t.equal(made.length, 3, 'the name that cannot go on a line is left to the walk');
  s.trigger();
  t.same(made[3]?.wentWith, '', 'no name left: a plain go (the walk)');
  made[3]!.findsNothing();
  await s.idle();
});
