// 3. Throughput: a burst of prompts over several repositories, an agent that
// takes a fixed time, at several max_parallel settings.
import * as path from 'node:path';
import { baseEnv, countFinished, dropPromptSync, loadAvg, makeBenchRoot, promptText, say, settledRuns, startWatcher, waitUntil } from './lib.mjs';

/**
 * One valet root (repositories already cloned); per setting the watcher
 * started with that max_parallel and idle, then all prompts renamed into place in one go
 * (round-robin over the repositories). Wall = the first rename → the last
 * settle (settle.settled_at in the runs' status.json). Ideal = no overhead
 * at all: ceil(prompts / max_parallel) rounds of one agent time (15 prompts
 * at 4 at once are 4 rounds: 8 s of 2 s agents, not 7.5). The even split,
 * prompts × agent seconds / max_parallel, is kept beside it (ideal_even_s,
 * ratio_to_even): it is what this bench reported before, and what issue 17's
 * figures were measured against.
 */
export async function throughput({ prompts, repos, agentSeconds, parallels }) {
  const names = Array.from({ length: repos }, (_, i) => `repo${i + 1}`);
  const out = [];
  // one valet root for every setting (the repositories cloned once, as in steady state)
  const root = await makeBenchRoot({ repos: names });
  try {
    for (const p of parallels) {
      await root.configure({ watcher: { max_parallel: p } });
      const before = countFinished(root);
      const known = new Set((await settledRuns(root)).map((r) => r.run_id));
      const watcher = await startWatcher(root, baseEnv({ PV_BENCH_AGENT_SECONDS: String(agentSeconds) }));
      const load = [loadAvg()];
      const t0 = Date.now();
      for (let i = 0; i < prompts; i++) {
        const rel = path.join(names[i % repos], 'main', `p${p}-${String(i).padStart(3, '0')}.prompt.md`);
        dropPromptSync(root.inbox, rel, promptText(`throughput ${p}/${i}`));
      }
      try {
        await waitUntil(`${prompts} prompts settled at max_parallel ${p}`, () => countFinished(root) - before >= prompts, 30 * 60_000, 50);
      } finally {
        await watcher.stop();
      }
      const runs = (await settledRuns(root)).filter((r) => !known.has(r.run_id));
      const end = Math.max(...runs.map((r) => Date.parse(r.settle?.settled_at ?? r.updated_at)));
      const wall = (end - t0) / 1000;
      const ideal = Math.ceil(prompts / p) * agentSeconds;
      const idealEven = (prompts * agentSeconds) / p;
      load.push(loadAvg());
      const row = {
        max_parallel: p,
        wall_s: +wall.toFixed(1),
        ideal_s: +ideal.toFixed(1),
        ratio_to_ideal: +(wall / ideal).toFixed(2),
        ideal_even_s: +idealEven.toFixed(2),
        ratio_to_even: +(wall / idealEven).toFixed(2),
        per_prompt_s: +(wall / prompts).toFixed(2),
        errors: runs.filter((r) => r.state !== 'done').length,
        load_avg: load,
      };
      say(`throughput: max_parallel ${p}: ${row.wall_s} s (ideal ${row.ideal_s} s, ×${row.ratio_to_ideal})`);
      out.push(row);
    }
  } finally {
    await root.cleanup();
  }
  return { prompts, repos, agent_seconds: agentSeconds, runs: out };
}
