// 1. Pickup latency: a complete prompt renamed into an inbox branch folder →
// its `.running.md` appearing, the watcher idle before each sample.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseEnv, dropPromptSync, loadAvg, makeBenchRoot, promptText, say, sleep, startWatcher, stats, waitQuiet } from './lib.mjs';

/**
 * The bench sees `.running.md` through its own inotify watch (fs.watch) on
 * the branch folder: pv-claim links x.running.md into place (link, then
 * unlink of x.prompt.md), and the link is an IN_CREATE event for that name.
 * The floor of this method is measured the same way: the bench renames a
 * file itself and times the event for it.
 */
function eventWaiter(dir) {
  const waiting = new Map();
  const watcher = fs.watch(dir, (_ev, name) => {
    const w = waiting.get(String(name));
    if (w) {
      waiting.delete(String(name));
      w(performance.now());
    }
  });
  return {
    next(name, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiting.delete(name);
          reject(new Error(`no ${name} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(name, (at) => {
          clearTimeout(t);
          resolve(at);
        });
      });
    },
    close: () => watcher.close(),
  };
}

/**
 * `branchFolders`: how many branch folders the inbox holds in all (the one
 * the prompts go to, plus empty ones in 10-branch repositories, as pv-tree
 * makes them): the claimer is told the prompt's path by the file event, so
 * the walk of all of them is no longer on the pickup path.
 */
export async function pickup({ samples, budgetSeconds = Infinity, branchFolders = 1 }) {
  const root = await makeBenchRoot({ repos: ['widget'] });
  for (let i = 1; i < branchFolders; i++) {
    const repo = `repo${String(Math.floor(i / 10)).padStart(4, '0')}`;
    fs.mkdirSync(path.join(root.inbox, repo, i % 10 === 0 ? 'main' : `feature~b${i % 10}`), { recursive: true });
  }
  const dir = path.join(root.inbox, 'widget', 'main');
  const events = eventWaiter(dir);
  const load = [loadAvg()];
  // The method's own floor: the bench's rename → the bench's event.
  const floor = [];
  for (let i = 0; i < 50; i++) {
    const name = `probe-${i}.txt`;
    const seen = events.next(name);
    fs.writeFileSync(path.join(root.root, name), 'x');
    fs.renameSync(path.join(root.root, name), path.join(dir, name));
    const t0 = performance.now();
    floor.push((await seen) - t0);
    fs.unlinkSync(path.join(dir, name));
  }

  const watcher = await startWatcher(root, baseEnv());
  const latencies = [];
  const errored = [];
  try {
    const started = performance.now();
    for (let i = 0; i < samples; i++) {
      if ((performance.now() - started) / 1000 > budgetSeconds) {
        say(`pickup (${branchFolders} folders): time budget of ${budgetSeconds} s spent after ${i} samples`);
        break;
      }
      await waitQuiet(watcher.pid);
      const name = `p${String(i).padStart(4, '0')}`;
      const running = events.next(`${name}.running.md`);
      const drop = dropPromptSync(root.inbox, `widget/main/${name}.prompt.md`, promptText(`pickup ${i}`));
      latencies.push((await running) - drop.perf);
      // let the run finish, so the next sample starts with the watcher idle
      const done = path.join(root.finished, 'widget', 'main', `${name}.done.md`);
      const failed = path.join(root.finished, 'widget', 'main', `${name}.error.md`);
      const deadline = Date.now() + 120_000;
      while (!fs.existsSync(done) && !fs.existsSync(failed)) {
        if (Date.now() > deadline) throw new Error(`${name} did not settle in 120 s (see ${watcher.logFile})`);
        await sleep(10);
      }
      if (fs.existsSync(failed)) errored.push(name);
      if (i % 25 === 24) say(`pickup (${branchFolders} folders): ${i + 1}/${samples}`);
    }
  } finally {
    events.close();
    await watcher.stop();
  }
  load.push(loadAvg());
  await root.cleanup();
  return {
    branch_folders: branchFolders,
    samples: latencies.length,
    samples_wanted: samples,
    method: 'inotify watch (fs.watch) on the branch folder in the bench process; t0 right after rename(2) returns',
    latency_ms: stats(latencies, 1),
    method_floor_ms: stats(floor, 2),
    settled_as_error: errored.length,
    watcher_ready_ms: Math.round(watcher.readyMs),
    load_avg: load,
  };
}
