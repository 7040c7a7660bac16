import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { updateRunStatus, RUN_FILES, type PvRecord } from '@prompt-valet/core';
import { startFakeModel, writeCodexHome, type FakeModel, type FakeTurn } from '@prompt-valet/testkit';

/**
 * A scratch valet for one test: a git checkout, a run folder holding the
 * prompt, a fake model API, a CODEX_HOME pointing at it, a config file and
 * the record pv-clone would have produced. `start()` spawns the built bin.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = path.resolve(here, '../bin/pv-run-codex.js');
export const CODEX = path.resolve(here, '../../../node_modules/.bin/codex');
/** no codex run in a test may take longer than this */
export const RUN_BOUND_MS = 90_000;

export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

export interface ScratchOptions {
  turns: FakeTurn[];
  prompt?: string;
  watcher?: Record<string, unknown>;
}

export interface Scratch {
  root: string;
  checkout: string;
  runRoot: string;
  runId: string;
  model: FakeModel;
  configFile: string;
  env: NodeJS.ProcessEnv;
  record: PvRecord;
  start(opts?: { args?: string[]; input?: string; env?: NodeJS.ProcessEnv }): Running;
}

export interface Running {
  child: ChildProcess;
  /** resolves when the bin has exited and its output is read */
  done: Promise<Finished>;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  records: PvRecord[];
  stdout: string;
  stderr: string;
}

export async function scratch(t: Teardown, opts: ScratchOptions): Promise<Scratch> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-run-codex-'));
  t.teardown(() => fsp.rm(root, { recursive: true, force: true }));
  const checkout = path.join(root, 'checkout');
  await fsp.mkdir(checkout);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: checkout, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  await fsp.writeFile(path.join(checkout, 'README.md'), '# scratch\n');
  git('add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-qm', 'init');

  const runId = `20260101-000000-000-${Math.random().toString(36).slice(2, 10).padEnd(8, '0')}`;
  const runRoot = path.join(root, 'processed', runId);
  await fsp.mkdir(runRoot, { recursive: true });
  const prompt = opts.prompt ?? 'Please add a file.\n';
  await fsp.writeFile(path.join(runRoot, RUN_FILES.prompt), prompt);
  await updateRunStatus(runRoot, { state: 'cloned', step: 'clone', prompt_rel: 'repo/main/x.running.md' });

  const model = await startFakeModel(opts.turns);
  t.teardown(() => model.close());
  const home = await writeCodexHome(path.join(root, 'codex-home'), model);

  const watcher = {
    runner_cmd: CODEX,
    runner_model: 'mock-model',
    // bubblewrap is missing here, so codex's own sandbox cannot run commands
    runner_sandbox: 'danger-full-access',
    runner_timeout_seconds: 120,
    runner_idle_timeout_seconds: 60,
    runner_kill_grace_seconds: 2,
    ...opts.watcher,
  };
  const configFile = path.join(root, 'prompt-valet.yaml');
  await fsp.writeFile(configFile, JSON.stringify({ processed: path.join(root, 'processed'), watcher }, null, 2));

  const env: NodeJS.ProcessEnv = { ...process.env, ...home.env, GH_TOKEN: 'ghp_must_not_leak', GITHUB_TOKEN: 'also_secret', NO_COLOR: '1' };
  delete env.PV_CONFIG;
  const record: PvRecord = {
    v: 1,
    run_id: runId,
    claim: {
      inbox: path.join(root, 'inbox'),
      rel: 'repo/main/x.running.md',
      path: path.join(root, 'inbox/repo/main/x.running.md'),
      prompt_name: 'x.prompt.md',
      run_root: runRoot,
      attempt: 1,
      claimed_at: new Date().toISOString(),
    },
    target: {
      owner: 'o', repo: 'repo', branch: 'main', repo_dir: checkout, clone_url: 'file:///dev/null',
      agent_branch: `codex/x-${runId}`, front_matter: {},
    },
    checkout: { dir: checkout, base_sha: '0'.repeat(40) },
  };

  const s: Scratch = {
    root, checkout, runRoot, runId, model, configFile, env, record,
    start(o = {}) {
      return startBin(t, ['--config', configFile, ...(o.args ?? [])], o.env ?? env, o.input ?? JSON.stringify(s.record) + '\n');
    },
  };
  return s;
}

export function startBin(t: Teardown, args: string[], env: NodeJS.ProcessEnv, input: string): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin!.end(input);
  const bound = setTimeout(() => child.kill('SIGKILL'), RUN_BOUND_MS);
  t.teardown(() => {
    clearTimeout(bound);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const done = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(bound);
      // --help prints text: only JSON lines are records (a test counting them notices the rest).
      const records = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as PvRecord);
      resolve({ code, signal, records, stdout, stderr });
    });
  });
  return { child, done };
}

/** Poll until `check` holds; fails after `timeoutMs` (generous: the machine is shared). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A pid that is gone or only a zombie (nothing reaps orphans in some containers). */
export function processIsDead(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}
