import { spawn } from 'node:child_process';
import * as path from 'node:path';
import {
  binPath, cloneInto, makeOrigin, makeValetRoot, promptScriptResponder, REPO_ROOT, runBin, startFakeGitHub, startFakeModel,
  startGitDaemon, writeCodexHome, type FakeGitHub, type ValetRoot,
} from '@prompt-valet/testkit';

/**
 * A valet root wired to real components, as in scripts/demo.mjs: an origin
 * acme/widget (branches main, dev) served by `git daemon`, the real codex
 * against the scripted fake model (a prompt's own ```sh block is what the
 * agent runs), the real gh against the fake GitHub, and the branch folders
 * made by a real `pv-tree --once`.
 */
export interface Pipeline {
  root: ValetRoot;
  gh: FakeGitHub;
  /** environment for the pipeline tools: codex home and key, gh's host and token */
  env: NodeJS.ProcessEnv;
  /** pv-watcher --once, bounded */
  watchOnce(): Promise<number>;
  /** a long-running pv-watcher; stop() sends SIGTERM and waits */
  startWatcher(): { stop(): Promise<void> };
}

type Teardown = (fn: () => unknown) => void;

export async function makePipeline(teardown: Teardown, prefix: string): Promise<Pipeline> {
  const root = await makeValetRoot({}, prefix);
  teardown(() => root.cleanup());
  const origins = path.join(root.root, 'origins');
  await makeOrigin(path.join(origins, 'acme', 'widget.git'), {
    branches: ['main', 'dev'],
    files: { 'README.md': '# widget\n' },
  });
  const daemon = await startGitDaemon(origins);
  teardown(() => daemon.close());
  // A long yield: codex waits for a slow command instead of answering "still running".
  const model = await startFakeModel([], { respond: promptScriptResponder({ yieldTimeMs: 120_000 }) });
  teardown(() => model.close());
  const gh = await startFakeGitHub({ dir: path.join(root.root, 'gh') });
  teardown(() => gh.close());
  const home = await writeCodexHome(path.join(root.root, 'codex-home'), model);
  await root.configure({
    watcher: {
      git_protocol: 'git',
      git_default_host: new URL(daemon.baseUrl).host,
      runner_cmd: path.join(REPO_ROOT, 'node_modules', '.bin', 'codex'),
      runner_model: 'mock-model',
      runner_timeout_seconds: 120,
      settle_seconds: 0,
      rescan_interval_seconds: 1,
      shutdown_grace_seconds: 5,
      runner_kill_grace_seconds: 2,
      max_attempts: 1,
      publisher: 'gh',
      gh_host: gh.host,
    },
  });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...home.env, ...gh.ghEnv() };
  await cloneInto(daemon.url('acme/widget.git'), path.join(root.repos, 'acme', 'widget'));
  const tree = await runBin('pv-tree', ['--once', '--config', root.configPath], { env, timeout: 60_000 });
  if (tree.code !== 0) throw new Error(`pv-tree failed: ${tree.stderr}`);

  const spawnWatcher = (args: string[]) => {
    const child = spawn(process.execPath, [binPath('pv-watcher'), '--config', root.configPath, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    }));
    return { child, exited, stderr: () => stderr };
  };
  return {
    root,
    gh,
    env,
    async watchOnce() {
      // Asynchronous on purpose: the fake model answers codex from this process.
      const w = spawnWatcher(['--once']);
      const code = await w.exited;
      if (code !== 0) throw new Error(`pv-watcher --once exited ${code}: ${w.stderr()}`);
      return code;
    },
    startWatcher() {
      const w = spawnWatcher([]);
      let stopped: Promise<void> | undefined;
      const stop = () => (stopped ??= (async () => {
        if (w.child.exitCode === null) w.child.kill('SIGTERM');
        await w.exited;
      })());
      teardown(stop);
      return { stop };
    },
  };
}
