// Throughput of dispatch: nats with one and with two workers (issue 19,
// docs/scale-out.md): 12 prompts over 3 repositories, a 2 s stand-in agent,
// 2 slots per worker, one nats-server on loopback, every host on this
// machine. The measurement is packages/queue/test/throughput.bench.ts (it
// reuses the scale-out test's valet and workers); this runs it and reads the
// figures it prints as TAP comments.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO, loadAvg } from './lib.mjs';

export async function scaleOut({ prompts }) {
  const load0 = loadAvg();
  const { stdout } = await promisify(execFile)(
    path.join(REPO, 'node_modules', '.bin', 'tap'),
    ['--reporter=tap', '--timeout', '900', '--disable-coverage', path.join('packages', 'queue', 'test', 'throughput.bench.ts')],
    { cwd: REPO, env: { ...process.env, PV_BENCH_PROMPTS: String(prompts) }, maxBuffer: 1 << 24, timeout: 20 * 60_000 },
  );
  const runs = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*# (\{"workers".*\})\s*$/.exec(line);
    if (m) runs.push(JSON.parse(m[1]));
  }
  if (runs.length === 0) throw new Error(`no figures in the bench's output:\n${stdout.slice(-2000)}`);
  return { prompts, runs, load_avg: [load0, loadAvg()] };
}
