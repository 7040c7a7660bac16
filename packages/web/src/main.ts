import { defineTool, EX, ToolError } from '@prompt-valet/core';
import * as fs from 'node:fs';
import { accessPolicy, socketPolicy } from './auth.js';
import { buildServer } from './server.js';

/**
 * Listen on a Unix socket whose file mode is the access rule: 0660, the
 * process's group (the drop group under prompt-valet-web.service). A stale
 * socket file left by a killed pv-web is replaced; anything else at the path
 * is refused.
 */
async function listenOnSocket(app: Awaited<ReturnType<typeof buildServer>>, socket: string): Promise<string> {
  const st = fs.lstatSync(socket, { throwIfNoEntry: false });
  if (st && !st.isSocket()) throw new ToolError('cannot_listen', `web.socket: ${socket} exists and is not a socket; move it away`, EX.UNAVAILABLE);
  if (st) fs.rmSync(socket);
  const previous = process.umask(0o117);
  try {
    await app.listen({ path: socket });
  } catch (err) {
    throw new ToolError('cannot_listen', `cannot listen on ${socket}: ${(err as Error).message}`, EX.UNAVAILABLE);
  } finally {
    process.umask(previous);
  }
  fs.chmodSync(socket, 0o660);
  return `unix:${socket}`;
}

interface WebArgs {
  host?: string;
  port?: number;
}

export const main = defineTool<WebArgs>({
  name: 'pv-web',
  summary: 'Serve the Prompt Valet dashboard and JSON API: submit prompts, follow runs live, abort, retry.',
  usage: 'pv-web [--host ADDR] [--port N] [--config FILE]',
  options: (y) =>
    y
      .option('host', { type: 'string', describe: 'address to bind (default: web.host, 127.0.0.1)' })
      .option('port', { type: 'number', describe: 'port (default: web.port, 8088; 0 picks a free one)' }),
  epilogue: `
An HTTP server over the valet's folders; it keeps no state of its own. A
submission is a prompt file written atomically into an inbox branch folder;
an abort is the run's ABORT file; a retry puts an errored prompt back to
pending; everything shown is read from inbox/, processed/ and finished/.

API (JSON; see the README for requests and answers):
  GET  /api/health                  GET  /api/targets
  GET  /api/queue                   GET  /api/runs?state=&repo=&branch=&limit=
  GET  /api/runs/ID                 GET  /api/runs/ID/log      (tail, text)
  GET  /api/runs/ID/log/stream      (Server-Sent Events until the run ends)
  POST /api/prompts                 (JSON {target,name,text} or multipart .md files)
  GET  /api/jobs/JOB                POST /api/runs/ID/abort    POST /api/runs/ID/retry
  GET  /api/tokens?days=N           (tokens per day, N from 1 to 90, default 7)
  POST /api/runs/ID/follow-up       (JSON {text,name}: continue the run's branch and PR)
The page is at /.

Security: with web.socket set, listens on that Unix socket (mode 0660, the
process's group: the drop group under prompt-valet-web.service), and who may
connect is who may use it. Otherwise binds web.host (127.0.0.1) by default. Binding any other address
needs web.token or web.token_file (at least 16 characters); with a token
every API request but /api/health needs "Authorization: Bearer <token>".
Cross-site requests that change anything are refused.

Output: one JSON line on stdout once listening: {"v":1,"listening":"http://HOST:PORT"}.
Requests are logged on stderr (method, path, status; never a token).
Signals: SIGTERM, SIGINT stop the server (open live logs are closed).

Exit status: 0 stopped by a signal; 64 bad command line; 69 the address
cannot be bound; 78 bad configuration (e.g. a public address without a token).

Examples:
  pv-web
  pv-web --host 0.0.0.0 --port 8088   # with web.token_file set
  curl -s localhost:8088/api/queue | jq '.running[].run_id'`,
  async run(ctx) {
    const { config } = ctx.config();
    const host = ctx.args.host ?? config.web.host;
    const port = ctx.args.port ?? config.web.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      ctx.log.error('--port takes a whole number from 0 to 65535');
      return EX.USAGE;
    }
    const socket = ctx.args.host === undefined ? config.web.socket : '';
    const policy = socket ? socketPolicy(config.web) : accessPolicy(config.web, host);
    const app = await buildServer({ config, policy, log: ctx.log });
    let url: string;
    if (socket) {
      url = await listenOnSocket(app, socket);
    } else {
      try {
        await app.listen({ host, port });
      } catch (err) {
        throw new ToolError('cannot_listen', `cannot listen on ${host}:${port}: ${(err as Error).message}`, EX.UNAVAILABLE);
      }
      const addr = app.server.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      const shown = host.includes(':') ? `[${host}]` : host;
      url = `http://${shown}:${bound}`;
    }
    ctx.io.stdout.write(JSON.stringify({ v: 1, listening: url }) + '\n');
    ctx.log.notice(`listening on ${url} (${socket ? 'socket mode 0660: its group may connect' : policy.token === undefined ? 'no token: loopback only' : 'token required'})`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        ctx.log.notice(`${signal}: stopping`);
        void app.close().then(() => resolve());
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
    });
    return EX.OK;
  },
});
