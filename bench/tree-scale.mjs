#!/usr/bin/env node
// Benchmark of pv-tree at scale (not a test): R repositories × B branches,
// each clone's origin a file:// bare repository in a temporary folder.
// Prints ONE JSON object on stdout; progress goes to stderr.
//
//   node bench/tree-scale.mjs [--repos 200] [--branches 50] [--runs 5] [--keep]
//
// Needs the bundle (make build). Measures, with wall clocks around the
// whole `pv-tree --once` process (what the systemd timer pays):
//   cold pass        empty inbox → every folder created
//   idempotent pass  inbox already right (best and median of --runs)
//   half             idempotent pass over the first R/2 repositories (linearity)
//   baseline         one `git ls-remote` per repository, serially, from sh
//                    (what the system being replaced does), on the same fixture
//   via git          the idempotent pass with an insteadOf rule in git's
//                    config, which sends every origin to git (the path of a
//                    network origin)
//   git alone        the same ls-remotes, as many at once as pv-tree runs, from
//                    xargs: the floor of asking each remote with git, which
//                    network origins still pay (pv-tree reads these local
//                    origins in-process, so it is not pv-tree's floor here)
// and counts the processes one idempotent pass starts (strace, when present).
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { DEFAULT_CONCURRENCY } from '../packages/tree/dist/main.js';

// This machine sets NODE_EXTRA_CA_CERTS, which adds 40-100 ms to every Node
// start; a server does not. Unset for everything the benchmarks start.
delete process.env.NODE_EXTRA_CA_CERTS;
const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
// pv-tree as `make install` deploys it (its bundle; `make build` makes it).
const BIN = path.join(here, '..', 'packages', 'tree', 'bundle', 'pv-tree.js');
const { values: opt } = parseArgs({
  options: {
    repos: { type: 'string', default: '200' },
    branches: { type: 'string', default: '50' },
    runs: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
  },
});
const R = Number(opt.repos);
const B = Number(opt.branches);
const RUNS = Math.max(1, Number(opt.runs));
if (!Number.isInteger(R) || R < 2 || !Number.isInteger(B) || B < 1) {
  process.stderr.write('usage: node bench/tree-scale.mjs [--repos N>=2] [--branches N>=1] [--runs N] [--keep]\n');
  process.exit(64);
}
if (!fs.existsSync(BIN)) {
  process.stderr.write('pv-tree is not bundled: run make build first\n');
  process.exit(69);
}
const say = (m) => process.stderr.write(`tree-scale: ${m}\n`);
const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' };
const git = (args, cwd) => run('git', args, { cwd, env: gitEnv, maxBuffer: 1 << 26 });

async function pool(items, n, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-tree-bench-'));
const cleanup = () => {
  if (!opt.keep) fs.rmSync(root, { recursive: true, force: true });
};
process.on('exit', cleanup);

// ---- fixture ------------------------------------------------------------
const t0 = performance.now();
const seed = path.join(root, 'seed.git');
const work = path.join(root, 'seed-work');
await git(['init', '--quiet', '--bare', '--initial-branch', 'main', seed]);
await git(['init', '--quiet', '--initial-branch', 'main', work]);
await git(['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', 'commit', '--quiet', '--allow-empty', '-m', 'seed'], work);
const names = ['main', ...Array.from({ length: B - 1 }, (_, i) => `feature/b${String(i + 1).padStart(3, '0')}`)];
await git(['push', '--quiet', seed, ...names.map((n) => `HEAD:refs/heads/${n}`)], work);
const repos = Array.from({ length: R }, (_, i) => `r${String(i).padStart(4, '0')}`);
for (const r of repos) fs.cpSync(seed, path.join(root, 'origins', 'bench', `${r}.git`), { recursive: true });
await pool(repos, os.availableParallelism() * 2, (r) =>
  git(['clone', '--quiet', `file://${path.join(root, 'origins', 'bench', `${r}.git`)}`, path.join(root, 'repos', 'bench', r)]),
);
// Half the repositories, for the linearity check: symlinks to the same clones.
fs.mkdirSync(path.join(root, 'repos-half', 'bench'), { recursive: true });
for (const r of repos.slice(0, R / 2)) fs.symlinkSync(path.join(root, 'repos', 'bench', r), path.join(root, 'repos-half', 'bench', r));
const config = (name, reposRoot) => {
  const inbox = path.join(root, `inbox-${name}`);
  fs.mkdirSync(inbox, { recursive: true });
  const file = path.join(root, `${name}.yaml`);
  fs.writeFileSync(file, [
    `inbox: ${JSON.stringify(inbox)}`,
    `processed: ${JSON.stringify(path.join(root, 'processed'))}`,
    `finished: ${JSON.stringify(path.join(root, 'finished'))}`,
    `repos_root: ${JSON.stringify(reposRoot)}`,
    'git_owner: bench',
    'inbox_mode: legacy_single_owner',
    '',
  ].join('\n'));
  return file;
};
const full = config('full', path.join(root, 'repos'));
const half = config('half', path.join(root, 'repos-half'));
say(`fixture: ${R} repositories × ${B} branches in ${((performance.now() - t0) / 1000).toFixed(1)} s (${root})`);

// ---- measurements -------------------------------------------------------
function timed(cmd, args, env = process.env) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - start;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
      else resolve({ ms, out, err });
    });
  });
}
const summaryOf = (out) => JSON.parse(out.trim().split('\n').pop()).summary;
const pvTree = (cfg, env) => timed(process.execPath, [BIN, '--once', '--config', cfg], env);
// An insteadOf rule in git's config (here from the environment, as an
// operator's ~/.gitconfig would have it) sends every origin to git: the path
// a network origin always takes, measured on the same fixture.
const viaGitEnv = { ...process.env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'url.https://git.invalid/.insteadOf', GIT_CONFIG_VALUE_0: 'unused://' };
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: Math.round(s[0]), median: Math.round(s[Math.floor(s.length / 2)]), runs: s.map(Math.round) };
};

const loadBefore = os.loadavg()[0];
const cold = await pvTree(full);
const coldSummary = summaryOf(cold.out);
say(`cold pass: ${Math.round(cold.ms)} ms, ${coldSummary.created} created`);

const idem = [];
let idemSummary;
for (let i = 0; i < RUNS; i++) {
  const r = await pvTree(full);
  idemSummary = summaryOf(r.out);
  const acted = ['created', 'removed', 'marked', 'unmarked', 'skipped', 'failed'].reduce((n, k) => n + idemSummary[k], 0);
  if (acted !== 0) throw new Error(`idempotent pass ${i + 1} acted: ${JSON.stringify(idemSummary)}`);
  idem.push({ ms: r.ms, inner: idemSummary.duration_ms });
}
say(`idempotent pass: ${idem.map((x) => Math.round(x.ms)).join(', ')} ms`);

const viaGit = [];
for (let i = 0; i < RUNS; i++) {
  const r = await pvTree(full, viaGitEnv);
  const summary = summaryOf(r.out);
  if (summary.local_listings !== 0 || summary.failed !== 0) throw new Error(`the pass asking git read origins itself or failed: ${JSON.stringify(summary)}`);
  viaGit.push(r.ms);
}
say(`idempotent pass, every origin asked with git: ${viaGit.map(Math.round).join(', ')} ms`);

await pvTree(half);
const halfRuns = [];
const halfInner = [];
for (let i = 0; i < RUNS; i++) {
  const r = await pvTree(half);
  halfRuns.push(r.ms);
  halfInner.push(summaryOf(r.out).duration_ms);
}

const nodeStart = [];
for (let i = 0; i < 3; i++) nodeStart.push((await timed(process.execPath, ['-e', '0'])).ms);

const script = `for d in "$@"; do git -C "$d" ls-remote --heads origin >/dev/null || exit 1; done`;
const baseline = [];
for (let i = 0; i < Math.min(RUNS, 3); i++) {
  baseline.push((await timed('/bin/sh', ['-c', script, 'sh', ...repos.map((r) => path.join(root, 'repos', 'bench', r))])).ms);
}

// The floor for any tool that asks each remote with git: the same ls-remote
// for every repository, run by xargs at pv-tree's own concurrency (no Node
// at all, nothing compared or created). pv-tree reads local origins like
// these in-process (its README, "Local origins"); for network origins, which
// it asks with git, it cannot be faster than this.
const width = DEFAULT_CONCURRENCY;
const parallelScript = `printf '%s\\n' "$@" | xargs -P ${width} -I{} git -C {} ls-remote --heads origin >/dev/null`;
const gitFloor = [];
for (let i = 0; i < Math.min(RUNS, 3); i++) {
  gitFloor.push((await timed('/bin/sh', ['-c', parallelScript, 'sh', ...repos.map((r) => path.join(root, 'repos', 'bench', r))])).ms);
}

// Processes started by one idempotent pass, by program (strace follows forks).
let processes = null;
try {
  const traceDir = path.join(root, 'strace');
  fs.mkdirSync(traceDir);
  // -ff: one file per process, so no execve line is split by another's.
  await run('strace', ['-ff', '-qq', '-e', 'trace=execve', '-o', path.join(traceDir, 't'), process.execPath, BIN, '--once', '--config', full], { maxBuffer: 1 << 26 });
  const byProgram = {};
  for (const f of fs.readdirSync(traceDir)) {
    let prog;
    for (const line of fs.readFileSync(path.join(traceDir, f), 'utf8').split('\n')) {
      const m = /execve\("([^"]+)".* = 0$/.exec(line);
      if (m) prog = path.basename(m[1]);
    }
    if (prog) byProgram[prog] = (byProgram[prog] ?? 0) + 1;
  }
  const total = Object.values(byProgram).reduce((a, b) => a + b, 0);
  const git = Object.entries(byProgram).filter(([p]) => p.startsWith('git')).reduce((a, [, n]) => a + n, 0);
  processes = { by_program: byProgram, total, git_per_repo: +(git / R).toFixed(2), all_per_repo: +(total / R).toFixed(2) };
} catch (err) {
  say(`strace unavailable (${err.message.split('\n')[0]}): process counts from pv-tree's own summary only`);
}

const round = (x) => Math.round(x);
process.stdout.write(JSON.stringify({
  bench: 'tree-scale',
  repos: R,
  branches_per_repo: B,
  cores: os.availableParallelism(),
  load_avg_1m: { before: +loadBefore.toFixed(2), after: +os.loadavg()[0].toFixed(2) },
  cold_pass_ms: round(cold.ms),
  cold_pass_inner_ms: coldSummary.duration_ms,
  cold_created: coldSummary.created,
  idempotent_pass_ms: stats(idem.map((x) => x.ms)),
  idempotent_pass_inner_ms: stats(idem.map((x) => x.inner)),
  idempotent_pass_via_git_ms: stats(viaGit),
  half: { repos: R / 2, idempotent_pass_ms: stats(halfRuns), idempotent_pass_inner_ms: stats(halfInner) },
  node_startup_ms: stats(nodeStart),
  baseline_serial_ls_remote_ms: stats(baseline),
  git_alone_parallel_ls_remote_ms: { ...stats(gitFloor), workers: width },
  git_commands_per_repo_by_pv_tree: idemSummary.git_commands / R,
  local_listings_by_pv_tree: idemSummary.local_listings,
  processes_per_idempotent_pass: processes,
  target_idempotent_ms: 400,
}) + '\n');
