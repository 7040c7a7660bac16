import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a webhook receiver got. */
export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** What the receiver does with a request: answer (after an optional delay), or never answer. */
export type Reply = { status: number; body?: string; delayMs?: number; headers?: Record<string, string> } | 'hang';

export interface WebhookServer {
  url: string;
  /** every request, in arrival order (hanging ones too) */
  received: Received[];
  /** requests still waiting for an answer */
  open(): number;
  close(): Promise<void>;
}

/** A loopback HTTP server standing in for ntfy, Slack, Discord or a JSON receiver. */
export async function startWebhookServer(reply: (req: Received, index: number) => Reply): Promise<WebhookServer> {
  const received: Received[] = [];
  let open = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '', headers: req.headers, body };
      const index = received.push(r) - 1;
      const answer = reply(r, index);
      open++;
      res.on('close', () => open--);
      if (answer === 'hang') return;
      setTimeout(() => {
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        res.end(answer.body ?? 'ok');
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    open: () => open,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
