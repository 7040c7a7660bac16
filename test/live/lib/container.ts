import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A throwaway Debian 12 with systemd as PID 1, booted with systemd-nspawn.
 * The debootstrap root is made once per machine and include list (about
 * 40 s) under /var/cache/prompt-valet-live/<hash>/root, outside the repo,
 * and copied fresh for every boot. The container shares this machine's
 * network namespace: servers on 127.0.0.1 here are reachable inside.
 */
export const INCLUDE = ['systemd', 'systemd-sysv', 'dbus', 'git', 'ca-certificates', 'make', 'passwd', 'procps', 'acl', 'bubblewrap', 'sudo', 'gh'];
const CACHE = process.env.PV_LIVE_CACHE ?? '/var/cache/prompt-valet-live';
/** Bump when what goes into the cached root changes. */
const ROOT_VERSION = 1;
const INSIDE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Container {
  /** the container's root folder on this machine */
  root: string;
  /** PID (here) of the container's systemd */
  pid: number;
  /** run a bash script inside as root; bounded by timeoutMs */
  sh(script: string, timeoutMs?: number): ExecResult;
  /** the path on this machine of a path inside */
  host(p: string): string;
  stop(): Promise<void>;
}

/** Why this machine cannot boot the container, or undefined when it can. */
export function cannotBootReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (systemd-nspawn needs root)';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (apt-get install -y systemd-container debootstrap; make system-deps does it)`;
  }
  if (!fs.existsSync('/usr/bin/node')) return '/usr/bin/node is missing (it is bound into the container)';
  return undefined;
}

/** The cached debootstrap root, made when missing. */
export function cachedRoot(log: (line: string) => void): string {
  const key = createHash('sha256').update(JSON.stringify({ INCLUDE, ROOT_VERSION, suite: 'bookworm' })).digest('hex').slice(0, 16);
  const dir = path.join(CACHE, key);
  const root = path.join(dir, 'root');
  if (fs.existsSync(path.join(root, 'usr/lib/systemd/systemd'))) return root;
  fs.mkdirSync(dir, { recursive: true });
  // A build cut short leaves root.<pid>: it is never used, only removed here.
  for (const stale of fs.readdirSync(dir).filter((n) => n.startsWith('root.'))) fs.rmSync(path.join(dir, stale), { recursive: true, force: true });
  const tmp = path.join(dir, `root.${process.pid}`);
  log(`live: making the Debian 12 root ${root} (debootstrap, about a minute; cached for later runs)`);
  const res = spawnSync('debootstrap', ['--variant=minbase', `--include=${INCLUDE.join(',')}`, 'bookworm', tmp], { encoding: 'utf8', timeout: 600_000, cwd: '/' });
  if (res.status !== 0) throw new Error(`debootstrap failed: ${(res.stderr || String(res.error)).trim().split('\n').slice(-1)[0]}`);
  fs.renameSync(tmp, root);
  return root;
}

/** Copy the cached root, put `prepare`'s files in, boot it, wait for systemd to be up. */
export async function bootDebian(opts: { binds: Array<{ from: string; to: string }>; prepare: (root: string) => void; log: (line: string) => void }): Promise<Container> {
  const source = cachedRoot(opts.log);
  const root = fs.mkdtempSync('/var/tmp/pv-live-');
  fs.rmdirSync(root);
  const cp = spawnSync('cp', ['-a', '--reflink=auto', source, root], { encoding: 'utf8', timeout: 300_000 });
  if (cp.status !== 0) throw new Error(`copying the root failed: ${cp.stderr.trim()}`);
  opts.prepare(root);
  const args = ['-D', root, '--register=no', '--keep-unit', '--boot', '--console=passive', '--bind-ro=/usr/bin/node', '--bind-ro=/usr/lib/node_modules', ...opts.binds.map((b) => `--bind-ro=${b.from}:${b.to}`)];
  // From /: nspawn refuses some working directories inside the root's parent.
  const nspawn: ChildProcess = spawn('systemd-nspawn', args, { cwd: '/', stdio: ['ignore', 'ignore', 'pipe'] });
  let nspawnErr = '';
  nspawn.stderr!.on('data', (c: Buffer) => (nspawnErr += c.toString()));
  const reap = () => nspawn.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => nspawn.once('exit', () => resolve()));

  let pid = 0;
  const deadline = Date.now() + 90_000;
  const sh = (script: string, timeoutMs = 120_000): ExecResult => {
    // env -i: the test runner injects NODE_OPTIONS into every child it spawns; a root shell inside has none.
    const res = spawnSync('nsenter', ['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', '/usr/bin/env', '-i', `PATH=${INSIDE_PATH}`, 'HOME=/root', 'LANG=C.UTF-8', 'TERM=dumb', '/bin/bash', '-c', script], {
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: res.status, stdout: res.stdout ?? '', stderr: (res.stderr ?? '') + (res.error ? `\n${String(res.error)}` : '') };
  };
  let state = '';
  while (Date.now() < deadline) {
    if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode}: ${nspawnErr.trim().split('\n').slice(-1)[0]}`);
    // Looked up again each time: nspawn's first child is a short-lived helper, not the container's PID 1.
    const child = spawnSync('pgrep', ['-P', String(nspawn.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
    pid = child ? Number(child) : 0;
    if (pid) {
      state = sh('systemctl is-system-running', 10_000).stdout.trim();
      if (state === 'running' || state === 'degraded') break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  if (state !== 'running' && state !== 'degraded') {
    nspawn.kill('SIGKILL');
    await exited;
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error(`the container did not come up within 90 s (systemctl is-system-running: ${state || 'no answer'}; nspawn: ${nspawnErr.trim().split('\n').slice(-1)[0] ?? ''})`);
  }
  return {
    root,
    pid,
    sh,
    host: (p) => path.join(root, p),
    async stop() {
      nspawn.kill('SIGTERM');
      const timer = setTimeout(() => nspawn.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      process.off('exit', reap);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The first ```sh block under a README heading: the commands an operator is told to run. */
export function readmeBlock(readme: string, heading: string): string {
  const at = readme.indexOf(`## ${heading}`);
  if (at < 0) throw new Error(`README has no "## ${heading}" section`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`README's "${heading}" section has no sh block`);
  return m[1]!;
}
