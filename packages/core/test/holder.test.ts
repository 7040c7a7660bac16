import t from 'tap';
import { spawn } from 'node:child_process';
import { holderFor, holderLiveness, pipelineHolder, processStartTicks } from '../src/holder.js';

t.test('this process is alive; a killed one is dead', async (t) => {
  t.equal(holderLiveness(holderFor(process.pid)), 'alive');
  const child = spawn('sleep', ['30']);
  const h = holderFor(child.pid!);
  t.equal(holderLiveness(h), 'alive');
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  t.equal(holderLiveness(h), 'dead');
});

t.test('a reused pid (different start time) is dead', async (t) => {
  const h = { ...holderFor(process.pid), start_ticks: (processStartTicks(process.pid) ?? 0) + 12345 };
  t.equal(holderLiveness(h), 'dead');
});

t.test('another boot is dead; another host is unknown', async (t) => {
  t.equal(holderLiveness({ ...holderFor(process.pid), boot_id: 'not-this-boot' }), 'dead');
  t.equal(holderLiveness({ ...holderFor(process.pid), host: 'elsewhere.invalid' }), 'unknown');
});

t.test('a pipeline group is held while any member lives, even after its leader exits', async (t) => {
  // sh is the group leader; it starts a long sleep and exits at once.
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  const sleeper = Number(await new Promise<string>((r) => child.stdout!.once('data', (d) => r(String(d)))));
  await new Promise((r) => child.on('exit', r));
  const h = { ...holderFor(child.pid!), pgid: child.pid! };
  // the leader's start time is gone with it: the group keeps the claim alive
  t.equal(holderLiveness({ ...h, start_ticks: 0 }), 'alive');
  process.kill(sleeper, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(holderLiveness(h), 'dead');
  t.ok(pipelineHolder().pgid, 'pipelineHolder names a group');
});
