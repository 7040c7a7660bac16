import * as fsp from 'node:fs/promises';
import { startTrackedProcess, type TrackedProcess } from './tracked-process.js';
import * as path from 'node:path';
import { expectErrno, readRunStatus, type RunStatus } from '@prompt-valet/core';
import { cloneInto, makeOrigin } from './git-fixtures.js';
import { startFakeGitHub, type FakeGitHub } from './fake-github.js';
import { promptScriptResponder, startFakeModel, writeCodexHome, type FakeModel } from './fake-model.js';
import { startGitHttpServer, startGitDaemon, type GitServer } from './git-server.js';
import { binPath, REPO_ROOT, waitFor } from './run-bin.js';
import { makeValetRoot, type ConfigOverrides, type ValetRoot } from './valet-root.js';

/**
 * A whole valet on loopback for end-to-end tests: bare origins served by
 * `git daemon` (or git-http-backend), the real codex binary against the fake
 * model (the prompt's own ```sh block is what the agent runs), the real gh
 * against the fake GitHub, and a config tying them together.
 *
 *     const v = await startPipelineFixture({ repos: ['widget', 'gadget'] });
 *     await v.root.dropPrompt('widget/main/x.prompt.md', v.prompt('touch x.txt'));
 *     const w = v.startWatcher();            // or: await v.runOnce()
 *     await v.waitForFinished(1);
 *     await w.stop();
 *     v.github.pullRequests                  // what GitHub received
 *     await v.close();
 */
export interface PipelineFixtureOptions {
  /** repositories of owner `acme`, each with branches main and dev */
  repos?: string[];
  /** git:// via git daemon (default) or http:// via git-http-backend */
  transport?: 'git' | 'http';
  publisher?: 'gh' | 'none';
  /** more config, merged over the fixture's */
  config?: ConfigOverrides;
  /** temp folder prefix (default pv-e2e-) */
  prefix?: string;
  /** how long codex waits for the prompt's command before answering "still running" */
  agentYieldMs?: number;
}

/** pv-watcher started by a test: its stderr holds its pipelines' too */
export type WatcherProcess = TrackedProcess;

export interface PipelineFixture {
  root: ValetRoot;
  origins: string;
  server: GitServer;
  model: FakeModel;
  github: FakeGitHub;
  /** environment for every pv-* process of this valet */
  env: NodeJS.ProcessEnv;
  /** bare repository of `acme/<repo>` */
  bare(repo: string): string;
  /** a prompt whose agent runs `script` in the checkout */
  prompt(script?: string, title?: string): string;
  startWatcher(args?: string[]): WatcherProcess;
  runOnce(args?: string[]): Promise<{ code: number | null; stderr: string }>;
  /** files under finished/ (relative), once at least `n` exist */
  waitForFinished(n: number, timeoutMs?: number): Promise<string[]>;
  listFinished(): Promise<string[]>;
  /** every run's status.json (core RunStatus), oldest run first */
  runStatuses(): Promise<RunStatus[]>;
  close(): Promise<void>;
}

async function walk(dir: string, base = dir): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, base)));
    else out.push(path.relative(base, p));
  }
  return out.sort();
}

export async function startPipelineFixture(opts: PipelineFixtureOptions = {}): Promise<PipelineFixture> {
  const repos = opts.repos ?? ['widget'];
  const root = await makeValetRoot({}, opts.prefix ?? 'pv-e2e-');
  const origins = path.join(root.root, 'origins');
  for (const repo of repos) {
    await makeOrigin(path.join(origins, 'acme', `${repo}.git`), {
      branches: ['main', 'dev'],
      files: { 'README.md': `# ${repo}\n` },
    });
  }
  const server = opts.transport === 'http' ? await startGitHttpServer(origins) : await startGitDaemon(origins);
  const model = await startFakeModel([], {
    respond: promptScriptResponder(opts.agentYieldMs === undefined ? {} : { yieldTimeMs: opts.agentYieldMs }),
  });
  const home = await writeCodexHome(path.join(root.root, 'codex-home'), model);
  const github = await startFakeGitHub({ dir: path.join(root.root, 'github') });
  const url = new URL(server.baseUrl);
  await root.configure({
    watcher: {
      git_protocol: url.protocol.replace(':', ''),
      git_default_host: url.host + url.pathname.replace(/\/$/, ''),
      runner_cmd: path.join(REPO_ROOT, 'node_modules', '.bin', 'codex'),
      runner_model: 'mock-model',
      runner_timeout_seconds: 120,
      publisher: opts.publisher ?? 'gh',
      rescan_interval_seconds: 2,
      retry_backoff_seconds: 0,
      shutdown_grace_seconds: 5,
      runner_kill_grace_seconds: 2,
    },
  });
  // Merged over the fixture's, key by key (a spread would replace its whole watcher section).
  if (opts.config) await root.configure(opts.config);
  for (const repo of repos) {
    await cloneInto(server.url(`acme/${repo}.git`), path.join(root.repos, 'acme', repo));
    for (const b of ['main', 'dev']) await fsp.mkdir(path.join(root.inbox, repo, b), { recursive: true });
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...home.env,
    ...github.ghEnv(),
    GH_TOKEN: 'gh-secret-token-for-tests',
    // gh reads this one for a host other than github.com
    GH_ENTERPRISE_TOKEN: 'gh-secret-token-for-tests',
    PV_CONFIG: root.configPath,
    NO_COLOR: '1',
  };

  const startWatcher = (args: string[] = []): WatcherProcess => {
    // A test that dies without stopping its watcher must not leave it running.
    return startTrackedProcess(process.execPath, [binPath('pv-watcher'), ...args], env, { keepStdout: false });
  };

  const listFinished = () => walk(root.finished);

  return {
    root,
    origins,
    server,
    model,
    github,
    env,
    bare: (repo) => path.join(origins, 'acme', `${repo}.git`),
    prompt(script, title) {
      const head = title ? `---\ntitle: ${title}\n---\n` : '';
      return script === undefined ? `${head}# Look around\n\nNothing to change.\n` : `${head}# Do it\n\n\`\`\`sh\n${script}\n\`\`\`\n`;
    },
    startWatcher,
    async runOnce(args = []) {
      const w = startWatcher(['--once', ...args]);
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 240_000);
      const code = await w.exited;
      clearTimeout(timer);
      return { code, stderr: w.stderr() };
    },
    listFinished,
    async runStatuses() {
      const ids = (await fsp.readdir(root.processed)).filter((d) => !d.startsWith('.')).sort();
      const all = await Promise.all(ids.map((id) => readRunStatus(path.join(root.processed, id))));
      return all.filter((s): s is RunStatus => s !== undefined);
    },
    async waitForFinished(n, timeoutMs = 180_000) {
      const settled = async () => (await listFinished()).filter((f) => /\.(done|error)\.md$/.test(f));
      await waitFor(`${n} settled prompt(s) in finished/`, async () => (await settled()).length >= n, timeoutMs, 200);
      return settled();
    },
    async close() {
      await server.close();
      await model.close();
      await github.close();
      await root.cleanup();
    },
  };
}
