import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { expectErrno } from '@prompt-valet/core';

/**
 * Real git servers on loopback, over a folder of bare repositories
 * (`<base>/<owner>/<repo>.git`, as made by `makeOrigin`). Both serve clone,
 * fetch and push.
 *
 *     const daemon = await startGitDaemon(base);    // git daemon, git://
 *     daemon.url('acme/widget.git')                 // git://127.0.0.1:PORT/acme/widget.git
 *     const web = await startGitHttpServer(base);   // git http-backend behind node:http
 *     web.url('acme/widget.git')                    // http://127.0.0.1:PORT/acme/widget.git
 *     web.requests                                  // how many HTTP requests it served
 *     await daemon.close(); await web.close();
 *
 *     const both = await startGitServers(base);     // {daemon, http, close()}
 *
 * Each listens on its own free port on 127.0.0.1. `close()` stops the server
 * and every child it started (git daemon runs in its own process group).
 */
export interface GitServer {
  /** `git://127.0.0.1:PORT/` or `http://127.0.0.1:PORT/` */
  baseUrl: string;
  port: number;
  /** URL of a repository given by its path under the base folder */
  url(repoPath: string): string;
  close(): Promise<void>;
}

export interface GitHttpServer extends GitServer {
  /** HTTP requests answered so far (proof that git really went through it) */
  readonly requests: number;
}

/** A port that was free a moment ago (git daemon cannot report the port it got for 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function killGroup(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      resolve();
      return;
    }
    child.once('exit', () => resolve());
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch (err) {
      expectErrno(err, 'ESRCH');
      resolve();
    }
  });
}

/** `git daemon` over `baseDir`, with push enabled. */
export async function startGitDaemon(baseDir: string): Promise<GitServer> {
  const base = path.resolve(baseDir);
  // The port may be taken between freePort() and the daemon's bind: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(
      'git',
      ['daemon', '--reuseaddr', `--base-path=${base}`, '--export-all', '--enable=receive-pack',
        '--listen=127.0.0.1', `--port=${port}`, '--informative-errors', base],
      { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const deadline = Date.now() + 20_000;
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await canConnect(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      await killGroup(child);
      if (/address already in use/i.test(stderr)) continue;
      throw new Error(`git daemon did not start: ${stderr.trim() || 'no output'}`);
    }
    const baseUrl = `git://127.0.0.1:${port}/`;
    // The daemon runs in a group of its own: if the test process ends
    // without close() (a failed or killed test), take the daemon with it.
    const onExit = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch (err) {
        expectErrno(err, 'ESRCH');
        // already gone
      }
    };
    process.once('exit', onExit);
    return {
      baseUrl,
      port,
      url: (p) => baseUrl + p.replace(/^\/+/, ''),
      close: () => {
        process.off('exit', onExit);
        return killGroup(child);
      },
    };
  }
  throw new Error('git daemon: no free port after 5 tries');
}

/**
 * `git http-backend` (smart HTTP) behind a small Node server: each request
 * runs the CGI with the request on stdin and its answer (CGI headers, then
 * the body) streamed back.
 */
export async function startGitHttpServer(baseDir: string): Promise<GitHttpServer> {
  const base = path.resolve(baseDir);
  const children = new Set<ChildProcess>();
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: base,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      // receive-pack (push) is refused to anonymous users unless enabled.
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
    };
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    const cgi = spawn('/usr/lib/git-core/git-http-backend', [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(cgi);
    cgi.on('exit', () => children.delete(cgi));
    cgi.on('error', (err) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
    cgi.stderr.resume();
    req.pipe(cgi.stdin);
    cgi.stdin.on('error', () => undefined);

    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sepLen = end === crlf ? 4 : 2;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + sepLen));
    });
    cgi.stdout.on('end', () => {
      if (!headersDone) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}/`;
  return {
    baseUrl,
    port,
    get requests() {
      return requests;
    },
    url: (p) => baseUrl + p.replace(/^\/+/, ''),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of children) c.kill('SIGTERM');
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Both servers over the same folder. */
export async function startGitServers(baseDir: string): Promise<{ daemon: GitServer; http: GitHttpServer; close(): Promise<void> }> {
  const daemon = await startGitDaemon(baseDir);
  let web: GitHttpServer;
  try {
    web = await startGitHttpServer(baseDir);
  } catch (err) {
    await daemon.close();
    throw err;
  }
  return {
    daemon,
    http: web,
    close: async () => {
      await Promise.all([daemon.close(), web.close()]);
    },
  };
}
