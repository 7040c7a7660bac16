import t from 'tap';
import { waitFor } from '@prompt-valet/testkit';
import { startScaleOut } from './lib/scale-out.js';

t.test('a 3-node JetStream cluster (3 replicas): a node killed mid-run and the valet restarted while jobs are out; everything settles once', async (t) => {
  const s = await startScaleOut({ repos: ['widget', 'gadget'], workers: 2, natsNodes: 3, nats: { ack_wait_seconds: 4 } });
  t.teardown(() => s.close());
  let recv = await s.startReceiver();
  const workers = [s.startWorker(1, { slots: 2 }), s.startWorker(2, { slots: 2 })];
  const n = 6;
  for (let i = 0; i < n; i++) {
    await s.valet.root.dropPrompt(`${i % 2 ? 'gadget' : 'widget'}/main/c${i}.prompt.md`, s.valet.prompt(`sleep 1; echo ${i} > c${i}.txt`, `C${i}`));
  }
  // The valet host goes down while its jobs are out: results wait in the stream.
  await recv.stop('SIGKILL');
  const d = await s.dispatch();
  t.equal(d.code, 0, 'dispatched');
  // A node dies while the workers run (the first agents have started).
  await waitFor('jobs running on the workers', () => /: started/.test(workers[0]!.stderr() + workers[1]!.stderr()), 60_000, 100).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\ndispatch: ${d.stderr}\nw1: ${workers[0]!.stderr()}\nw2: ${workers[1]!.stderr()}`);
  });
  await s.nats.nodes[0]!.kill();
  recv = await s.startReceiver();
  const finished = await s.valet.waitForFinished(n, 180_000).catch((err: unknown) => {
    t.fail(`${(err as Error).message}\nrecv: ${recv.stderr()}\nw1: ${workers[0]!.stderr()}\nw2: ${workers[1]!.stderr()}`);
    return [];
  });
  t.equal(finished.filter((f) => /^[a-z]+\/main\/c\d\.done\.md$/.test(f)).length, n, `all ${n} done, once each`);
  t.equal(new Set(s.valet.github.pullRequests.map((pr) => pr.head)).size, n, 'one PR per prompt');
  t.equal(s.valet.github.pullRequests.length, n, 'no second PR for any');
  await recv.stop();
  for (const w of workers) await w.stop();
});
