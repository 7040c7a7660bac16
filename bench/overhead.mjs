// 2. Overhead per run: the whole pipeline around an agent that returns at
// once, one prompt at a time, split by step from each run's status.json;
// plus the fixed costs it is made of (process start-up, git).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipelineCommand } from '../packages/watcher/dist/pipeline.js';
import { startFakeGitHub } from '../packages/testkit/dist/index.js';
import {
  REPO, baseEnv, bin, dropPromptSync, gitTraceSummary, loadAvg, makeBenchRoot, repeatTimed, promptText, say, sleep,
  startWatcher, stats, timeBatch, timeProcess, treeUsage, waitQuiet, CLK_TCK,
} from './lib.mjs';

export const TOOLS = ['pv-claim', 'pv-resolve', 'pv-clone', 'pv-run-codex', 'pv-publish', 'pv-settle', 'pv-watcher', 'pv-tree'];

/**
 * Wall time between consecutive history entries, named after the step that
 * reached the later state; `pickup` is the drop → the claim's rename
 * (claimed_at), `run-folder` the rename → the first history entry,
 * `agent-start` pv-clone's end → pv-run-codex about to start the agent.
 */
function splitRun(st, dropWall, endWall) {
  const out = {};
  const add = (k, ms) => (out[k] = (out[k] ?? 0) + ms);
  const at = (s) => Date.parse(s);
  add('pickup', at(st.claimed_at) - dropWall);
  let prev = at(st.claimed_at);
  for (const h of st.history) {
    const t = at(h.at);
    if (h.step === 'run-codex') add('agent-start', t - prev);
    else if (h.step === 'publish' && st.durations_ms?.['run-codex'] !== undefined) {
      add('agent', st.durations_ms['run-codex']);
      add('publish', t - prev - st.durations_ms['run-codex']);
    } else add(h.step === 'claim' ? 'run-folder' : h.step, t - prev);
    prev = t;
  }
  add('seen', endWall - prev); // the settled file → the bench's 2 ms poll finding it
  return out;
}

async function runSeries(label, { runs, publisher, ghEnv = {}, traceDir }) {
  const root = await makeBenchRoot({ repos: ['widget'], watcher: { publisher } });
  fs.mkdirSync(traceDir, { recursive: true });
  const env = baseEnv({ ...ghEnv, GIT_TRACE2_EVENT: traceDir });
  const watcher = await startWatcher(root, env);
  const walls = [];
  const cpus = [];
  const splits = [];
  const failed = [];
  try {
    // one run first, not counted: the first fetch and worktree of the clone
    for (let i = -1; i < runs; i++) {
      await waitQuiet(watcher.pid);
      if (i === 0) fs.rmSync(traceDir, { recursive: true, force: true }), fs.mkdirSync(traceDir);
      const name = `o${i + 1}`;
      const cpu0 = treeUsage(watcher.pid).ticks;
      const drop = dropPromptSync(root.inbox, `widget/main/${name}.prompt.md`, promptText(`overhead ${i}`));
      const done = path.join(root.finished, 'widget', 'main', `${name}.done.md`);
      const error = path.join(root.finished, 'widget', 'main', `${name}.error.md`);
      const deadline = Date.now() + 120_000;
      while (!fs.existsSync(done) && !fs.existsSync(error)) {
        if (Date.now() > deadline) throw new Error(`${label}: ${name} did not settle in 120 s (see ${watcher.logFile})`);
        await sleep(2);
      }
      const endPerf = performance.now();
      const endWall = Date.now();
      await waitQuiet(watcher.pid, { quietMs: 50 });
      if (i < 0) continue;
      cpus.push(((treeUsage(watcher.pid).ticks - cpu0) * 1000) / CLK_TCK);
      walls.push(endPerf - drop.perf);
      const runDir = fs.readdirSync(root.processed).find((d) => {
        try {
          return JSON.parse(fs.readFileSync(path.join(root.processed, d, 'status.json'), 'utf8')).prompt_rel === `widget/main/${name}.prompt.md`;
        } catch {
          return false;
        }
      });
      const st = JSON.parse(fs.readFileSync(path.join(root.processed, runDir, 'status.json'), 'utf8'));
      if (st.state !== 'done') failed.push(`${name}: ${st.error?.message ?? st.state}`);
      splits.push(splitRun(st, drop.wall, endWall));
    }
  } finally {
    await watcher.stop();
  }
  const git = gitTraceSummary(traceDir);
  await root.cleanup();
  const steps = {};
  for (const k of Object.keys(splits[0] ?? {})) steps[k] = stats(splits.map((s) => s[k] ?? 0)).p50;
  return {
    runs,
    publisher,
    wall_ms: stats(walls),
    cpu_ms_per_run: stats(cpus),
    step_p50_ms: steps,
    git_per_run: {
      commands: +(git.count / runs).toFixed(1),
      ms: Math.round(git.ms / runs),
      by_command: Object.fromEntries(Object.entries(git.by_command).map(([k, v]) => [k, { count: +(v.count / runs).toFixed(1), ms: Math.round(v.ms / runs) }])),
    },
    failed,
  };
}

const PIPELINE_TOOLS = ['pv-claim', 'pv-resolve', 'pv-clone', 'pv-run-codex', 'pv-publish', 'pv-settle'];

/**
 * Where a run's CPU goes, by program: each pipeline tool started through
 * GNU time (PV_TOOLS_DIR holds wrappers), whose figure includes what the
 * tool itself started and waited for (git, gh, the agent); "watcher and the
 * rest" is the tree's CPU per run less the tools' (pv-watcher, sh, cat).
 * A series of its own, publisher none: the wrappers add a process per step.
 */
async function cpuByProgram(runs) {
  if (!fs.existsSync('/usr/bin/time')) return null;
  const root = await makeBenchRoot({ repos: ['widget'], watcher: { publisher: 'none' } });
  const acct = path.join(root.root, 'cpu-by-program.txt');
  const wrappers = path.join(root.root, 'timed-tools');
  fs.mkdirSync(wrappers);
  for (const t of PIPELINE_TOOLS) {
    const script = `#!/bin/sh\nexec /usr/bin/time -a -o '${acct}' -f '${t} %U %S' '${process.execPath}' '${bin(t)}' "$@"\n`;
    fs.writeFileSync(path.join(wrappers, t), script, { mode: 0o755 });
  }
  const watcher = await startWatcher(root, baseEnv({ PV_TOOLS_DIR: wrappers }));
  let treeMs = 0;
  try {
    for (let i = -1; i < runs; i++) {
      await waitQuiet(watcher.pid);
      if (i === 0) fs.writeFileSync(acct, '');
      const cpu0 = treeUsage(watcher.pid).ticks;
      dropPromptSync(root.inbox, `widget/main/c${i + 1}.prompt.md`, promptText(`cpu ${i}`));
      const done = path.join(root.finished, 'widget', 'main', `c${i + 1}.done.md`);
      const deadline = Date.now() + 120_000;
      while (!fs.existsSync(done)) {
        if (Date.now() > deadline) throw new Error(`cpu by program: c${i + 1} did not settle as done in 120 s (see ${watcher.logFile})`);
        await sleep(5);
      }
      await waitQuiet(watcher.pid, { quietMs: 50 });
      if (i >= 0) treeMs += ((treeUsage(watcher.pid).ticks - cpu0) * 1000) / CLK_TCK;
    }
  } finally {
    await watcher.stop();
  }
  const perTool = {};
  for (const line of fs.readFileSync(acct, 'utf8').split('\n')) {
    const m = /^(pv-[a-z-]+) ([\d.]+) ([\d.]+)$/.exec(line);
    if (!m) continue;
    perTool[m[1]] ??= { starts: 0, cpu_ms: 0 };
    perTool[m[1]].starts += 1 / runs;
    perTool[m[1]].cpu_ms += ((Number(m[2]) + Number(m[3])) * 1000) / runs;
  }
  await root.cleanup();
  const toolsMs = Object.values(perTool).reduce((n, x) => n + x.cpu_ms, 0);
  const round1 = (x) => Math.round(x * 10) / 10;
  return {
    runs,
    tree_cpu_ms_per_run: Math.round(treeMs / runs),
    by_tool: Object.fromEntries(Object.entries(perTool).map(([k, v]) => [k, { starts: round1(v.starts), cpu_ms: Math.round(v.cpu_ms) }])),
    watcher_and_rest_ms: Math.round(treeMs / runs - toolsMs),
  };
}

/** The pipeline the watcher runs, over an inbox with nothing to claim: pure process start-up. */
async function emptyPipeline(n) {
  const root = await makeBenchRoot({ repos: ['widget'], preclone: false });
  const env = baseEnv();
  // locateTool finds the steps in PV_TOOLS_DIR (as the installed layout has them side by side)
  const tools = path.join(root.root, 'tools');
  fs.mkdirSync(tools);
  for (const t of TOOLS) fs.symlinkSync(bin(t), path.join(tools, `${t}.js`));
  const cmd = pipelineCommand({ configPath: root.configPath, env: { ...env, PV_TOOLS_DIR: tools } });
  const r = await repeatTimed(n, () => timeProcess('/bin/sh', ['-c', `(${cmd}) 3>/dev/null`], { env }));
  await root.cleanup();
  return r;
}

const p50s = (r) => ({ wall_ms: r.wall_ms.p50, cpu_ms: r.cpu_ms.p50 });

export async function overhead({ runs, startupRuns, startupBatch }) {
  const load = [loadAvg()];
  const traceRoot = fs.mkdtempSync(path.join(REPO, 'bench', '.trace-'));
  let ghServer;
  try {
    say('overhead: fixed costs');
    // Bare Node and each tool's --help by the same method, batches of starts (see timeBatch).
    const nodeBare = await repeatTimed(startupRuns, () => timeBatch(process.execPath, ['-e', '0'], startupBatch));
    const help = {};
    for (const t of TOOLS) help[t] = await repeatTimed(startupRuns, () => timeBatch(process.execPath, [bin(t), '--help'], startupBatch));
    // A plain start, as a pipeline step pays it: the bundle loaded, the config read, no input.
    const plain = {};
    const plainRoot = await makeBenchRoot({ repos: ['widget'], preclone: false });
    for (const t of ['pv-resolve', 'pv-settle', 'pv-publish']) {
      plain[t] = await repeatTimed(startupRuns, () => timeBatch(process.execPath, [bin(t), '--config', plainRoot.configPath], startupBatch));
    }
    await plainRoot.cleanup();
    // what a tool's start-up is made of: loading each shared dependency alone
    const imports = {};
    for (const m of ['yargs', 'yaml', 'execa', 'chalk', '@prompt-valet/core']) {
      imports[m] = await repeatTimed(startupRuns, () => timeProcess(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(m)})`]));
    }
    const gitVersion = await repeatTimed(startupRuns, () => timeProcess('git', ['--version']));
    const empty = await emptyPipeline(startupRuns);

    say(`overhead: ${runs} runs, publisher none`);
    const none = await runSeries('none', { runs, publisher: 'none', traceDir: path.join(traceRoot, 'none') });
    say(`overhead: CPU by program, ${runs} runs`);
    const byProgram = await cpuByProgram(runs);
    say(`overhead: ${runs} runs, publisher gh (fake GitHub over TLS)`);
    ghServer = await startFakeGitHub({ dir: path.join(traceRoot, 'gh') });
    const gh = await runSeries('gh', { runs, publisher: 'gh', ghEnv: ghServer.ghEnv(), traceDir: path.join(traceRoot, 'gh-trace') });
    gh.pull_requests_opened = ghServer.pullRequests.length;
    load.push(loadAvg());
    return {
      method: 'watcher daemon, settle 0, fake agent returning at once, one prompt at a time (next after the previous pipeline ended); wall = rename into place → settled file in finished/ (2 ms poll)',
      node_bare: p50s(nodeBare),
      startup_batch: startupBatch,
      help: Object.fromEntries(Object.entries(help).map(([k, v]) => [k, p50s(v)])),
      plain_start: Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, p50s(v)])),
      imports: Object.fromEntries(Object.entries(imports).map(([k, v]) => [k, p50s(v)])),
      git_version: p50s(gitVersion),
      empty_pipeline: p50s(empty),
      none,
      cpu_by_program: byProgram,
      gh,
      load_avg: load,
    };
  } finally {
    await ghServer?.close();
    fs.rmSync(traceRoot, { recursive: true, force: true });
  }
}
