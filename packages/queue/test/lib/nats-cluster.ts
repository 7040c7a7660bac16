import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { connect, type Authenticator } from 'nats';
import { freePort, waitFor } from '@prompt-valet/testkit';

/**
 * Real nats-server processes (Debian's, scripts/ensure-system-deps.sh) on
 * loopback: one JetStream node, or a cluster of three with routes between
 * them. Every node has its own store under `dir`.
 */
/** Longest a node may live: longer than any test file runs. */
const NODE_LIFETIME_SECONDS = 600;

export interface NatsNode {
  name: string;
  url: string;
  port: number;
  child: ChildProcess;
  /** kill -9 the node */
  kill(): Promise<void>;
}

export interface NatsCluster {
  nodes: NatsNode[];
  servers: string[];
  close(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface StartNatsOptions {
  /** a server config file's text (authorization { … }), given with -c; the flags above still set ports and store */
  conf?: string;
  /** how the readiness check connects when conf asks for an identity */
  authenticator?: Authenticator;
}

export async function startNats(dir: string, size: 1 | 3 = 1, o: StartNatsOptions = {}): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), cluster: await freePort() })));
  const nodes: NatsNode[] = [];
  for (const [i, p] of ports.entries()) {
    const name = `n${i + 1}`;
    const store = path.join(dir, name);
    await fsp.mkdir(store, { recursive: true });
    const args = ['-js', '-a', '127.0.0.1', '-p', String(p.client), '-sd', store, '-n', name];
    if (o.conf !== undefined) {
      const conf = path.join(dir, `${name}.conf`);
      await fsp.writeFile(conf, o.conf);
      args.unshift('-c', conf);
    }
    if (size > 1) {
      const routes = ports.filter((_, j) => j !== i).map((o) => `nats://127.0.0.1:${o.cluster}`).join(',');
      args.push('--cluster_name', 'pv-test', '--cluster', `nats://127.0.0.1:${p.cluster}`, '--routes', routes);
    }
    const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
    // Bounded: a test killed by a signal (tap's timeout) runs no exit handler, so the node must end on its own.
    const child = spawn('timeout', ['-s', 'KILL', String(NODE_LIFETIME_SECONDS), 'nats-server', ...args], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.off('exit', reap));
    nodes.push({
      name,
      url: `nats://127.0.0.1:${p.client}`,
      port: p.client,
      child,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((r) => child.once('exit', r));
        // kill -9 the server itself (timeout cannot pass SIGKILL on); timeout then exits.
        const server = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        for (const pid of server) process.kill(pid, 'SIGKILL');
        if (server.length === 0) child.kill('SIGKILL');
        await gone;
      },
    });
  }
  for (const n of nodes) await waitFor(`nats-server ${n.name} listening`, () => listening(n.port), 15_000, 100);
  // JetStream answers once the cluster has elected its meta leader.
  const nc = await connect({ servers: nodes.map((n) => n.url), ...(o.authenticator ? { authenticator: o.authenticator } : {}) });
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  await waitFor('JetStream ready', () => jsm.getAccountInfo().then(() => true, () => false), 30_000, 200);
  await nc.close();
  return {
    nodes,
    servers: nodes.map((n) => n.url),
    async close() {
      await Promise.all(nodes.map((n) => n.kill()));
    },
  };
}
