import t from 'tap';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startPipelineFixture, waitFor } from '@prompt-valet/testkit';

/**
 * pv-watcher hands every settled record to one pv-notify: the webhook gets a
 * message per run, and a webhook that never answers holds nothing up.
 */
t.test('each settled run is posted to the webhooks; a hanging one delays nothing', async (t) => {
  const received: Record<string, unknown>[] = [];
  const hung: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      if (req.url === '/hang') {
        hung.push(res); // never answered
        return;
      }
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => {
    for (const res of hung) res.destroy();
    server.closeAllConnections();
    server.close();
  });

  const v = await startPipelineFixture({ prefix: 'pv-notify-watch-' });
  t.teardown(() => v.close());
  await v.root.configure({
    notify: { webhooks: [`json:${base}/hook`, `json:${base}/hang`], timeout_seconds: 60, retries: 0, drain_seconds: 1 },
  });
  await v.root.dropPrompt('widget/main/one.prompt.md', v.prompt('echo one > one.txt', 'One'));
  await v.root.dropPrompt('widget/dev/two.prompt.md', v.prompt('echo two > two.txt', 'Two'));

  const run = await v.runOnce();
  t.equal(run.code, 0, 'pv-watcher --once ran');
  t.equal((await v.listFinished()).filter((f) => f.endsWith('.done.md')).length, 2, 'both prompts done');
  t.equal(received.length, 2, 'one message per settled run reached the answering webhook');
  t.same(received.map((m) => m.state).sort(), ['done', 'done']);
  t.same(received.map((m) => m.branch).sort(), ['dev', 'main']);
  t.ok(received.every((m) => typeof m.pr_url === 'string' && String(m.pr_url).includes('/pull/')), 'each message links its PR');
  // Never answered, so nothing orders its requests before the watcher's exit: this server may read them after.
  await waitFor('both requests at the hanging webhook', () => hung.length >= 2, 10_000, 50).catch(() => undefined);
  t.equal(hung.length, 2, 'the hanging webhook was asked too, and never answered');
});
