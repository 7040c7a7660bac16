import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { makeValetRoot } from '@prompt-valet/testkit';
import { startWeb } from './fixtures/web-server.js';

function getOverSocket(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, headers: { host: 'valet.example.org' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

t.test('web.socket: pv-web listens on a 0660 Unix socket, behind a proxy with any Host', async (t) => {
  const root = await makeValetRoot({}, 'pv-web-socket-');
  t.teardown(() => root.cleanup());
  const socket = path.join(root.root, 'web.sock');
  await root.configure({ web: { socket } });
  const web = await startWeb(root.configPath);
  t.teardown(() => web.stop());
  t.equal(web.url, `unix:${socket}`, 'announces the socket');
  t.equal(fs.statSync(socket).mode & 0o777, 0o660, 'only its owner and group may connect');
  const health = await getOverSocket(socket, '/api/health');
  t.equal(health.status, 200, 'answers over the socket');
  const queue = await getOverSocket(socket, '/api/queue');
  t.equal(queue.status, 200, 'the public Host header of a reverse proxy is accepted');
  t.equal(await web.stop(), 0);

  const again = await startWeb(root.configPath);
  t.equal((await getOverSocket(socket, '/api/health')).status, 200, 'a socket left by an earlier pv-web is replaced');
  await again.stop();
});

t.test('web.socket naming something else is refused in one line', async (t) => {
  const root = await makeValetRoot({}, 'pv-web-socket-');
  t.teardown(() => root.cleanup());
  const file = path.join(root.root, 'precious.txt');
  fs.writeFileSync(file, 'keep me');
  await root.configure({ web: { socket: file } });
  await t.rejects(startWeb(root.configPath), /exists and is not a socket/);
  t.equal(fs.readFileSync(file, 'utf8'), 'keep me', 'the file is left alone');
});
