// 4. Idle cost: the watcher over a large inbox with nothing to do.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeValetRoot } from '../packages/testkit/dist/index.js';
import { CONFIG_SCHEMA } from '../packages/core/dist/index.js';
import { CLK_TCK, FAKE_AGENT, baseEnv, descendants, distinctResidentKb, loadAvg, peakRssKb, say, sleep, startWatcher, treeUsage } from './lib.mjs';

/**
 * CPU: ticks of the watcher and everything it started (its own utime+stime,
 * cutime+cstime of reaped children — the pipelines each rescan starts — and
 * the live descendants), read at the start and end of the window. Memory:
 * the watcher's VmHWM (peak RSS over its whole life, start-up scan
 * included), and the largest RSS of the whole tree seen by sampling every
 * 100 ms; and the tree's memory with each physical page counted once
 * (distinctResidentKb: summed RSS counts the node executable's pages once
 * per Node process), taken whenever the summed RSS reaches a new peak (at
 * most once a second; one reading costs the bench ~0.3 s of its own CPU).
 * Pipelines are counted by sampling too (a pipeline lives ~1 s).
 */
export async function idle({ repos, branches, seconds, rescanSeconds }) {
  const root = await makeValetRoot(
    {
      watcher: {
        runner_cmd: FAKE_AGENT,
        quiet_seconds: 1,
        shutdown_grace_seconds: 1,
        ...(rescanSeconds ? { rescan_interval_seconds: rescanSeconds } : {}),
      },
    },
    'pv-bench-idle-',
  );
  for (let r = 0; r < repos; r++) {
    for (let b = 0; b < branches; b++) {
      fs.mkdirSync(path.join(root.inbox, `repo${String(r).padStart(3, '0')}`, b === 0 ? 'main' : `feature~b${b}`), { recursive: true });
    }
  }
  const load = [loadAvg()];
  const watcher = await startWatcher(root, baseEnv());
  const startCpu = treeUsage(watcher.pid);
  say(`idle: watcher ready in ${Math.round(watcher.readyMs)} ms over ${repos * branches} branch folders; measuring ${seconds} s`);
  const t0 = performance.now();
  let treePeakKb = 0;
  let selfPeakSampledKb = 0;
  const pipelines = new Set();
  let distinctPeakKb = null;
  let distinctAt = -Infinity;
  while (performance.now() - t0 < seconds * 1000) {
    const u = treeUsage(watcher.pid);
    if (u.treeRssKb > treePeakKb + 1024 && performance.now() - distinctAt >= 1000) {
      const kb = distinctResidentKb([watcher.pid, ...descendants(watcher.pid).map((d) => d.pid)]);
      distinctAt = performance.now();
      if (kb !== null) distinctPeakKb = Math.max(distinctPeakKb ?? 0, kb);
    }
    treePeakKb = Math.max(treePeakKb, u.treeRssKb);
    selfPeakSampledKb = Math.max(selfPeakSampledKb, u.selfRssKb);
    for (const d of descendants(watcher.pid)) if (d.ppid === watcher.pid) pipelines.add(d.pid);
    await sleep(100);
  }
  const end = treeUsage(watcher.pid);
  const elapsed = (performance.now() - t0) / 1000;
  const cpuSeconds = (end.ticks - startCpu.ticks) / CLK_TCK;
  const vmHwmKb = peakRssKb(watcher.pid);
  await watcher.stop();
  load.push(loadAvg());
  await root.cleanup();
  return {
    repos,
    branches,
    folders: repos * branches,
    seconds: +elapsed.toFixed(1),
    rescan_interval_seconds: rescanSeconds ?? CONFIG_SCHEMA['watcher.rescan_interval_seconds'].default,
    watcher_ready_ms: Math.round(watcher.readyMs),
    startup_cpu_s: +(startCpu.ticks / CLK_TCK).toFixed(2),
    cpu_seconds: +cpuSeconds.toFixed(2),
    cpu_percent_of_core: +((100 * cpuSeconds) / elapsed).toFixed(2),
    pipelines_started: pipelines.size,
    watcher_peak_rss_mb: vmHwmKb === null ? null : +(vmHwmKb / 1024).toFixed(1),
    watcher_rss_sampled_peak_mb: +(selfPeakSampledKb / 1024).toFixed(1),
    tree_rss_sampled_peak_mb: +(treePeakKb / 1024).toFixed(1),
    tree_distinct_peak_mb: distinctPeakKb === null ? null : +(distinctPeakKb / 1024).toFixed(1),
    load_avg: load,
  };
}
