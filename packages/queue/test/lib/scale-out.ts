import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { nkeyAuthenticator } from 'nats';
import YAML from 'yaml';
import { binPath, claimLockedCommand, killAllOf, valetProcesses, waitFor, shQuote, startPipelineFixture, startTrackedProcess, type PipelineFixture, type PipelineFixtureOptions, type TrackedProcess } from '@prompt-valet/testkit';
import { startNats, type NatsCluster } from './nats-cluster.js';

/**
 * One valet host and N worker hosts on loopback, each with its own root
 * (processed/, repos_root, config), around a real nats-server (one node or
 * a cluster of three). The valet is the pipeline fixture with
 * `dispatch: nats`; workers share its git server, fake model and fake GitHub.
 */
export type Proc = TrackedProcess;

export interface ScaleOut {
  valet: PipelineFixture;
  nats: NatsCluster;
  workerRoots: string[];
  /** `pv-queue work jobs --name w<i>` on worker i's root */
  startWorker(i: number, opts?: { slots?: number; command?: string[] }): Proc;
  /** `pv-queue recv results -- pv-settle` on the valet, once it has made the streams */
  startReceiver(): Promise<Proc>;
  /** `pv-claim | pv-resolve | pv-queue send jobs | pv-settle` once, under a claim lock */
  dispatch(): Promise<{ code: number | null; stderr: string; stdout: string }>;
  workerEnv(i: number): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export interface ScaleOutOptions extends PipelineFixtureOptions {
  workers?: number;
  natsNodes?: 1 | 3;
  nats?: Record<string, unknown>;
  /** NATS with identities: the server's config text, the valet's and the workers' nkey seed files (nats.nkey_seed_file) */
  natsAuth?: { conf: string; valetSeedFile: string; workerSeedFile: string };
}

/** A pv-queue process on a root; 20 s from SIGTERM to SIGKILL. */
export function startProc(file: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const p = startTrackedProcess(file, args, env);
  return { ...p, stop: (signal = 'SIGTERM') => p.stop(signal, 20_000) };
}

const node = process.execPath;
const bin = (tool: string) => shQuote(binPath(tool));

export async function startScaleOut(opts: ScaleOutOptions = {}): Promise<ScaleOut> {
  const dir = await fsp.mkdtemp('/tmp/pv-nats-');
  const auth = opts.natsAuth;
  const nats = await startNats(dir, opts.natsNodes ?? 1, auth ? { conf: auth.conf, authenticator: nkeyAuthenticator(new TextEncoder().encode((await fsp.readFile(auth.valetSeedFile, 'utf8')).trim())) } : {});
  const natsConfig = {
    servers: nats.servers,
    ack_wait_seconds: 4,
    max_deliveries: 3,
    reconcile_interval_seconds: 1,
    replicas: opts.natsNodes ?? 1,
    ...(auth ? { nkey_seed_file: auth.valetSeedFile } : {}),
    ...opts.nats,
  };
  const valet = await startPipelineFixture({
    ...opts,
    prefix: 'pv-valet-',
    config: { ...(opts.config ?? {}), dispatch: 'nats', nats: natsConfig },
  });
  const valetConfig = YAML.parse(await fsp.readFile(valet.root.configPath, 'utf8')) as Record<string, unknown>;
  const workerRoots: string[] = [];
  for (let i = 1; i <= (opts.workers ?? 2); i++) {
    const root = path.join(valet.root.root, `worker-${i}`);
    const paths = { inbox: path.join(root, 'inbox'), processed: path.join(root, 'processed'), finished: path.join(root, 'finished'), repos_root: path.join(root, 'repos') };
    for (const p of Object.values(paths)) await fsp.mkdir(p, { recursive: true });
    const workerNats = auth ? { nats: { ...(valetConfig.nats as Record<string, unknown>), nkey_seed_file: auth.workerSeedFile } } : {};
    await fsp.writeFile(path.join(root, 'prompt-valet.yaml'), YAML.stringify({ ...valetConfig, ...paths, ...workerNats }));
    workerRoots.push(root);
  }
  const workerEnv = (i: number): NodeJS.ProcessEnv => ({ ...valet.env, PV_CONFIG: path.join(workerRoots[i - 1]!, 'prompt-valet.yaml') });
  const procs: Proc[] = [];
  const track = (p: Proc) => {
    procs.push(p);
    return p;
  };
  return {
    valet,
    nats,
    workerRoots,
    workerEnv,
    startWorker(i, o = {}) {
      const command = o.command ?? ['sh', '-c', `${node} ${bin('pv-clone')} | ${node} ${bin('pv-run-codex')} | ${node} ${bin('pv-publish')}`];
      return track(startProc(node, [binPath('pv-queue'), 'work', 'jobs', '--slots', String(o.slots ?? 1), '--name', `w${i}`, '--', ...command], workerEnv(i)));
    },
    async startReceiver() {
      const p = track(startProc(node, [binPath('pv-queue'), 'recv', 'results', '--', node, binPath('pv-settle')], valet.env));
      await waitFor('pv-queue recv taking results', () => /taking results/.test(p.stderr()) || p.child.exitCode !== null, 60_000, 50);
      if (p.child.exitCode !== null) throw new Error(`pv-queue recv ended: ${p.stderr()}`);
      return p;
    },
    async dispatch() {
      const pipeline = `${node} ${bin('pv-claim')} | ${node} ${bin('pv-resolve')} | ${node} ${bin('pv-queue')} send jobs | ${node} ${bin('pv-settle')}`;
      const p = startProc('sh', ['-c', claimLockedCommand(valet.root.processed, pipeline)], valet.env);
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 60_000);
      const code = await p.exited;
      clearTimeout(timer);
      return { code, stderr: p.stderr(), stdout: p.stdout() };
    },
    async close() {
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
      // Their children too (a settler, a worker's pipeline): nothing may write while the roots go.
      for (const config of [valet.root.configPath, ...workerRoots.map((_, i) => workerEnv(i + 1).PV_CONFIG!)]) {
        await killAllOf('process of this test', () => valetProcesses(config));
      }
      await nats.close();
      await valet.close();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
