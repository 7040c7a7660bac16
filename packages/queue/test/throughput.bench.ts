// Throughput of dispatch: nats with one and with two workers (docs/scale-out.md,
// "Measured"). Not part of `make test`: run it by hand,
//   npx tsc -b && npx tap --timeout 900 packages/queue/test/throughput.bench.ts
// The agent is bench/fake-agent.sh taking PV_BENCH_AGENT_SECONDS (2 s).
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '@prompt-valet/testkit';
import { startScaleOut } from './lib/scale-out.js';

const PROMPTS = Number(process.env.PV_BENCH_PROMPTS ?? 12);
const SLOTS = 2;
const AGENT_SECONDS = 2;

for (const workers of [1, 2]) {
  t.test(`${PROMPTS} prompts, ${workers} worker(s) × ${SLOTS} slots, ${AGENT_SECONDS} s agent`, async (t) => {
    const repos = ['r1', 'r2', 'r3'];
    const s = await startScaleOut({
      repos,
      workers,
      config: { watcher: { runner_cmd: path.join(REPO_ROOT, 'bench', 'fake-agent.sh') } },
    });
    t.teardown(() => s.close());
    s.valet.env.PV_BENCH_AGENT_SECONDS = String(AGENT_SECONDS);
    const recv = await s.startReceiver();
    const procs = Array.from({ length: workers }, (_, i) => s.startWorker(i + 1, { slots: SLOTS }));
    for (let i = 0; i < PROMPTS; i++) await s.valet.root.dropPrompt(`${repos[i % 3]}/main/b${i}.prompt.md`, s.valet.prompt(undefined, `B${i}`));
    const load0 = os.loadavg()[0]!;
    const t0 = Date.now();
    t.equal((await s.dispatch()).code, 0);
    const done = await s.valet.waitForFinished(PROMPTS, 600_000);
    const wall = (Date.now() - t0) / 1000;
    const ideal = (PROMPTS * AGENT_SECONDS) / (workers * SLOTS);
    t.equal(done.filter((f) => f.endsWith('.done.md')).length, PROMPTS);
    t.comment(JSON.stringify({ workers, slots: SLOTS, prompts: PROMPTS, wall_s: +wall.toFixed(1), ideal_s: ideal, per_prompt_s: +(wall / PROMPTS).toFixed(2), load_before: load0, load_after: os.loadavg()[0] }));
    await recv.stop();
    for (const p of procs) await p.stop();
  });
}
