import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import { binPath, waitFor } from '@prompt-valet/testkit';

/** A pv-web process started from its built bin on a free port, for one test. */
export interface WebServer {
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then wait for the exit code */
  stop(): Promise<number | null>;
}

export async function startWeb(configPath: string, opts: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<WebServer> {
  const child = spawn(process.execPath, [binPath('pv-web'), '--config', configPath, '--port', '0', ...(opts.args ?? [])], {
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  // Bounded: a test that forgets stop() still ends it.
  const bound = setTimeout(() => child.kill('SIGKILL'), 600_000);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    clearTimeout(bound);
    resolve(code);
  }));
  const line = await Promise.race([
    waitFor('pv-web to listen', () => out.includes('\n') && out, 30_000),
    exited.then((code) => {
      throw new Error(`pv-web exited ${code} before listening: ${err}`);
    }),
  ]);
  const url = (JSON.parse(line.split('\n')[0]!) as { listening: string }).listening;
  return {
    url,
    child,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP request with full control of the headers (fetch refuses to set Host and Origin). */
export function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A multipart/form-data body built by hand, so a test can send names and bytes no browser would. */
export function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: string | Buffer }>): { body: Buffer; type: string } {
  const boundary = `----pvweb${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
    chunks.push(Buffer.from(`--${boundary}\r\ncontent-disposition: ${disp}\r\n${p.type ? `content-type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}
