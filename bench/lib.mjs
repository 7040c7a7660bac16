// What the benchmarks share: valet roots with origins, the watcher as a
// daemon, CPU and memory of a process tree from /proc, git's own trace.
// Benchmarks, not tests: nothing here asserts anything about time.
import { spawn, execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { bundleState, staleBundleLine } from '../packages/core/dist/index.js';
import { cloneInto, makeOrigin, makeValetRoot } from '../packages/testkit/dist/index.js';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..');
export const FAKE_AGENT = path.join(HERE, 'fake-agent.sh');
export const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64 and arm64
const run = promisify(execFile);

/**
 * The tool as `make install` deploys it: its bundle (scripts/bundle.mjs),
 * which starts the other tools' bundles. `make bench` builds them; a missing
 * or stale one stops the bench rather than measure code the tests never ran.
 */
export function bin(tool) {
  const pkg = path.join(REPO, 'packages', tool.replace(/^pv-/, ''));
  const stale = staleBundleLine(tool, bundleState(REPO, pkg, tool));
  if (stale) throw new Error(stale);
  return path.join(pkg, 'bundle', `${tool}.js`);
}
export const say = (m) => process.stderr.write(`bench: ${m}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const round = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? null : +x.toFixed(d));

/** nearest-rank percentile of an ascending array */
function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function stats(xs, digits = 0) {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    min: round(s[0], digits),
    p50: round(pct(s, 50), digits),
    p95: round(pct(s, 95), digits),
    max: round(s[s.length - 1], digits),
    mean: round(mean, digits),
  };
}

export const loadAvg = () => os.loadavg().map((x) => +x.toFixed(2));

/** Base environment for everything the benchmarks start: no colour, no inherited valet settings. */
export function baseEnv(extra = {}) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', NO_COLOR: '1', ...extra };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

/**
 * A valet root (testkit) whose origins are local bare repositories
 * `origins/acme/<repo>.git` reached over file:// (testkit's default), each
 * already cloned into repos_root as pv-clone would leave it after a first run,
 * so a benchmark measures the steady state rather than one-off clones.
 */
export async function makeBenchRoot({ repos = ['widget'], branches = ['main'], watcher = {}, preclone = true } = {}) {
  const root = await makeValetRoot(
    {
      watcher: {
        runner_cmd: FAKE_AGENT,
        runner_model: 'bench-model',
        runner_timeout_seconds: 300,
        quiet_seconds: 0,
        publisher: 'none',
        // pv-watcher lingers this long after SIGTERM even when idle (see README): keep stops short
        shutdown_grace_seconds: 1,
        ...watcher,
      },
    },
    'pv-bench-',
  );
  const origins = path.join(root.root, 'origins');
  for (const r of repos) {
    const bare = await makeOrigin(path.join(origins, 'acme', `${r}.git`), { branches, files: { 'README.md': `# ${r}\n` } });
    if (preclone) await cloneInto(`file://${bare}`, path.join(root.repos, 'acme', r));
    for (const b of branches) await fsp.mkdir(path.join(root.inbox, r, b.replaceAll('/', '~')), { recursive: true });
  }
  return { ...root, origins };
}

export function promptText(title) {
  return `---\ntitle: ${title}\n---\n# ${title}\n\nWrite a file (benchmark).\n`;
}

/** Write a prompt the way an upload finishes (hidden temp, then rename into place); returns the time of the rename. */
export function dropPromptSync(inbox, rel, text) {
  const dest = path.join(inbox, rel);
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.upload`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, dest);
  return { perf: performance.now(), wall: Date.now(), dest };
}

// ---- processes, from /proc ----------------------------------------------

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: fields start after the last ')'
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): field n is f[n - 3]
    return {
      pid,
      ppid: Number(f[1]),
      utime: Number(f[11]),
      stime: Number(f[12]),
      cutime: Number(f[13]),
      cstime: Number(f[14]),
      rssPages: Number(f[21]),
    };
  } catch {
    return undefined;
  }
}

function allStats() {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(Number(d));
    if (st) out.push(st);
  }
  return out;
}

/** The live descendants of `pid` (not `pid` itself). */
export function descendants(pid, stats = allStats()) {
  const kids = new Map();
  for (const s of stats) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(s);
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    for (const c of kids.get(todo.pop()) ?? []) {
      out.push(c);
      todo.push(c.pid);
    }
  }
  return out;
}

const PAGE_KB = 4; // getconf PAGESIZE / 1024 on this machine's architecture

/**
 * CPU ticks used so far by `pid` and everything it started: its own
 * utime+stime, plus cutime+cstime (children that ended and were reaped), plus
 * what the still-live descendants have used. The difference of two such
 * readings is the CPU the tree used in between, whichever children came and
 * went. RSS: the process itself and the whole tree, now.
 */
export function treeUsage(pid) {
  const stats = allStats();
  const self = stats.find((s) => s.pid === pid);
  if (!self) return undefined;
  const desc = descendants(pid, stats);
  let ticks = self.utime + self.stime + self.cutime + self.cstime;
  let rssKb = self.rssPages * PAGE_KB;
  for (const d of desc) {
    ticks += d.utime + d.stime + d.cutime + d.cstime;
    rssKb += d.rssPages * PAGE_KB;
  }
  return { ticks, selfRssKb: self.rssPages * PAGE_KB, treeRssKb: rssKb, children: desc.length };
}

/**
 * The memory a set of processes holds, each physical page counted once, in
 * kB: the distinct page frames behind their resident pages, from
 * /proc/<pid>/pagemap (needs root; null otherwise, or when a process is
 * gone). Summed RSS counts the pages every Node process maps from the node
 * executable and its libraries (~35 MB) once per process.
 */
export function distinctResidentKb(pids) {
  const frames = new Set();
  const entry = Buffer.alloc(8 * 4096);
  for (const pid of pids) {
    let maps;
    let fd;
    try {
      maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
      fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    } catch {
      return null;
    }
    try {
      for (const line of maps.split('\n')) {
        const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
        if (!m || line.endsWith('[vsyscall]')) continue;
        const first = Number.parseInt(m[1], 16) / 4096;
        const last = Number.parseInt(m[2], 16) / 4096;
        for (let page = first; page < last; page += 4096) {
          const n = Math.min(4096, last - page);
          const got = fs.readSync(fd, entry, 0, n * 8, page * 8);
          for (let i = 0; i + 8 <= got; i += 8) {
            const v = entry.readBigUInt64LE(i);
            if (!(v >> 63n)) continue; // not present
            const pfn = v & ((1n << 55n) - 1n);
            if (pfn === 0n) return null; // frame numbers hidden: not root
            frames.add(pfn);
          }
        }
      }
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }
  return frames.size * PAGE_KB;
}

/** VmHWM: the peak resident set of one process since it started, in kB. */
export function peakRssKb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * The descendants doing work. pv-watcher keeps one pipeline started ahead
 * (its shells and a `pv-claim --wait` waiting for a go line): those count
 * as idle; whether that pv-claim has finished loading is told by its CPU.
 */
function workingDescendants(pid, stats = allStats()) {
  return descendants(pid, stats).filter((d) => {
    const cmd = cmdline(d.pid);
    if (cmd[0] === '/bin/sh' || cmd[0] === 'sh') return false;
    return !(cmd.some((a) => /pv-claim(\.js)?$/.test(a)) && cmd.includes('--wait'));
  });
}

/**
 * Resolves once `pid` has been idle for `quietMs`: no descendant but the
 * pipeline waiting ahead, and no CPU used by any descendant meanwhile (so
 * the waiting pv-claim has finished starting up).
 */
export async function waitQuiet(pid, { quietMs = 150, timeoutMs = 120_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let since = Date.now();
  let lastTicks = -1;
  for (;;) {
    const stats = allStats();
    const ticks = descendants(pid, stats).reduce((n, d) => n + d.utime + d.stime, 0);
    if (workingDescendants(pid, stats).length > 0 || ticks !== lastTicks) since = Date.now();
    else if (Date.now() - since >= quietMs) return;
    lastTicks = ticks;
    if (Date.now() > deadline) throw new Error(`process ${pid} still has working children after ${timeoutMs} ms`);
    await sleep(10);
  }
}

// ---- the watcher as a daemon ----------------------------------------------

/**
 * Start `pv-watcher --config …` as a daemon, its stderr into a log file;
 * resolves once it says it is watching and its start-up rescan has ended.
 */
export async function startWatcher(root, env, { logFile = path.join(root.root, 'watcher.log'), readyTimeoutMs = 120_000 } = {}) {
  const log = fs.openSync(logFile, 'a');
  const started = performance.now();
  const child = spawn(process.execPath, [bin('pv-watcher'), '--config', root.configPath], {
    env,
    stdio: ['ignore', 'ignore', log],
  });
  fs.closeSync(log);
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const deadline = Date.now() + readyTimeoutMs;
  while (!fs.readFileSync(logFile, 'utf8').includes('watching ')) {
    if (exited) throw new Error(`pv-watcher exited early (${JSON.stringify(exited)}): ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (Date.now() > deadline) throw new Error('pv-watcher did not start watching in time');
    await sleep(10);
  }
  const watchingMs = performance.now() - started;
  await waitQuiet(child.pid);
  return {
    child,
    pid: child.pid,
    logFile,
    watchingMs,
    readyMs: performance.now() - started,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exit;
      clearTimeout(killer);
    },
  };
}

/** `n` prompts settled (done or error) in finished/: their status.json, read from processed/. */
export async function settledRuns(root) {
  const out = [];
  for (const d of await fsp.readdir(root.processed).catch(() => [])) {
    if (d.startsWith('.')) continue;
    try {
      const st = JSON.parse(await fsp.readFile(path.join(root.processed, d, 'status.json'), 'utf8'));
      if (st.state === 'done' || st.state === 'error') out.push(st);
    } catch {
      // being written (they are renamed into place, so rarely) or not a run folder
    }
  }
  return out;
}

/** How many files are in finished/ (settled prompts), recursively. */
export function countFinished(root) {
  try {
    return fs.readdirSync(root.finished, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
  } catch {
    return 0;
  }
}

export async function waitUntil(what, check, timeoutMs, everyMs = 5) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- fixed costs ------------------------------------------------------------

/** CPU ticks of this process's reaped children so far (cutime + cstime). */
function childTicks() {
  const st = readStat(process.pid);
  return st ? st.cutime + st.cstime : 0;
}

/**
 * One process, from spawn to exit: wall ms, and its CPU ms (user + system,
 * itself and its children; 10 ms resolution) read from this process's
 * cutime/cstime, which grow by exactly that once the child is reaped. Run one
 * at a time for the CPU figure to be the child's alone.
 */
export function timeProcess(cmd, args, { env = baseEnv(), stdin = 'ignore', cwd = REPO } = {}) {
  return new Promise((resolve, reject) => {
    const c0 = childTicks();
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, cwd, stdio: [stdin, 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-1000)}`));
      else resolve({ wall: ms, cpu: ((childTicks() - c0) * 1000) / CLK_TCK });
    });
  });
}

/**
 * `k` starts of one command in a row from one sh, timed as one: wall and CPU
 * per start. CPU comes in 10 ms ticks; over k starts the resolution is
 * 10/k ms (sh's own start, ~1 ms once, is shared by all k).
 */
export async function timeBatch(cmd, args, k, opts = {}) {
  const loop = `i=0; while [ $i -lt ${k} ]; do "$@" >/dev/null </dev/null || exit 1; i=$((i + 1)); done`;
  const r = await timeProcess('/bin/sh', ['-c', loop, 'sh', cmd, ...args], opts);
  return { wall: r.wall / k, cpu: r.cpu / k };
}

/** `n` runs of `fn` (returning {wall, cpu}), one after the other: stats of each. */
export async function repeatTimed(n, fn) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await fn());
  return { wall_ms: stats(xs.map((x) => x.wall)), cpu_ms: stats(xs.map((x) => x.cpu)) };
}

// ---- git's own trace (GIT_TRACE2_EVENT to a folder: one file per git process) ----

function subcommand(args) {
  for (let i = 0; i < args.length; i++) {
    if (['-c', '-C', '--git-dir', '--work-tree'].includes(args[i])) i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return '?';
}

/**
 * Summary of the git processes traced into `dir`: those started by the valet
 * (top-level: their session id has no parent part), their count by
 * subcommand, and their summed wall time (each process's own t_abs at exit).
 */
export function gitTraceSummary(dir) {
  const byCmd = {};
  let count = 0;
  let ms = 0;
  let files = [];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return { count: 0, ms: 0, by_command: {} };
  }
  for (const f of files) {
    let sid = '';
    let cmd = '?';
    let tAbs = null;
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        continue;
      }
      if (ev.event === 'start') {
        sid = ev.sid;
        cmd = subcommand(ev.argv.slice(1));
      }
      if (ev.event === 'exit' || ev.event === 'atexit') tAbs = ev.t_abs;
    }
    if (!sid || sid.includes('/') || tAbs === null) continue; // a git started by git
    count++;
    ms += tAbs * 1000;
    const c = (byCmd[cmd] ??= { count: 0, ms: 0 });
    c.count++;
    c.ms += tAbs * 1000;
  }
  for (const c of Object.values(byCmd)) c.ms = Math.round(c.ms);
  return { count, ms: Math.round(ms), by_command: byCmd };
}

export { run as execFileAsync };
