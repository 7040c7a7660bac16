import * as fsSync from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { connect } from 'nats';
import { readJsonIfExists, readRunStatus, type ClaimRecord } from '@prompt-valet/core';
import { killAllOf, originBranches, valetProcesses, waitFor } from '@prompt-valet/testkit';
import { startScaleOut } from './lib/scale-out.js';

const claimsOf = async (processed: string): Promise<ClaimRecord[]> => {
  const dir = path.join(processed, '.ledger', 'claims');
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const out: ClaimRecord[] = [];
  for (const n of names) {
    const c = await readJsonIfExists<ClaimRecord>(path.join(dir, n));
    if (c) out.push(c);
  }
  return out;
};

t.test('kill -9 of a worker mid-run: the job goes to the other worker after the ack wait; one branch, one PR, done once', async (t) => {
  const s = await startScaleOut({ repos: ['widget'], workers: 2, nats: { ack_wait_seconds: 3 } });
  t.teardown(() => s.close());
  const recv = await s.startReceiver();
  const first = s.startWorker(1);
  await s.valet.root.dropPrompt('widget/main/slow.prompt.md', s.valet.prompt('sleep 4; echo slow > slow.txt', 'Slow'));
  t.equal((await s.dispatch()).code, 0, 'dispatched');
  const [claim] = await claimsOf(s.valet.root.processed);
  t.equal(claim?.liveness?.kind, 'dispatched', 'the claim is dispatched, not held by a local lock');
  const onFirst = path.join(s.workerRoots[0]!, 'processed', claim!.run_id);
  await waitFor('the agent running on w1', async () => (await readRunStatus(onFirst).catch(() => undefined))?.agent_runs === 1, 60_000, 100);
  // The host dies: the worker, its pipeline and its agent, all at once.
  const workerConfig = s.workerEnv(1).PV_CONFIG!;
  await killAllOf('w1 process', () => valetProcesses(workerConfig));
  await first.exited;
  const second = s.startWorker(2);
  const [settled] = await s.valet.waitForFinished(1, 90_000).catch((err: unknown) => {
    t.fail(`${(err as Error).message}\nrecv: ${recv.stderr()}\nw2: ${second.stderr()}`);
    return [];
  });
  t.match(settled, /slow\.done\.md$/, 'done');
  t.same((await s.valet.listFinished()).filter((f) => f.endsWith('.md')), ['widget/main/slow.done.md'], 'done once');
  const status = await readRunStatus(path.join(s.valet.root.processed, claim!.run_id));
  t.equal(status?.worker, 'w2', 'finished by the other worker');
  t.equal(status?.deliveries, 2, 'on the second delivery');
  t.equal(s.valet.github.pullRequests.length, 1, 'one PR');
  const branches = [...(await originBranches(s.valet.bare('widget'))).keys()].filter((b) => b.startsWith('codex/'));
  t.equal(branches.length, 1, 'one agent branch');
  await recv.stop();
  await second.stop();
});

t.test('a job whose command always fails retryably ends as an error after max deliveries', async (t) => {
  const s = await startScaleOut({ repos: ['widget'], workers: 1, nats: { ack_wait_seconds: 3, max_deliveries: 2 } });
  t.teardown(() => s.close());
  const recv = await s.startReceiver();
  const worker = s.startWorker(1, { command: ['sh', '-c', 'cat >/dev/null; echo "cannot reach the forge" >&2; exit 75'] });
  await s.valet.root.dropPrompt('widget/main/doomed.prompt.md', s.valet.prompt('true', 'Doomed'));
  t.equal((await s.dispatch()).code, 0, 'dispatched');
  const finished = await s.valet.waitForFinished(1, 60_000);
  t.same(finished, ['widget/main/doomed.error.md'], 'settled as an error');
  // pv-settle moves the prompt into finished/ first, then writes the reason beside it.
  const doomedReason = path.join(s.valet.root.finished, 'widget/main/doomed.error.txt');
  await waitFor('the reason beside it', () => fsSync.existsSync(doomedReason), 10_000, 50).catch(() => undefined);
  const reason = await fsp.readFile(doomedReason, 'utf8');
  t.match(reason, /gave up after 2 deliveries \(nats\.max_deliveries 2\)/, `the reason says why: ${reason.trim()}`);
  // Under load the lease may also run out during the last try: the server's advisory then ends it the same way.
  t.ok((worker.stderr().match(/handed back for another try/g) ?? []).length <= 1, `handed back at most once, then given up: ${worker.stderr()}\nrecv: ${recv.stderr()}`);
  await recv.stop();
  await worker.stop();
});

t.test('a result delivered twice settles once; a result is checked like any input', async (t) => {
  const s = await startScaleOut({ repos: ['widget'], workers: 0 });
  t.teardown(() => s.close());
  // The valet's receiver makes the streams, then is down while results come in.
  const before = await s.startReceiver();
  await s.valet.root.dropPrompt('widget/main/twice.prompt.md', s.valet.prompt(undefined, 'Twice'));
  t.equal((await s.dispatch()).code, 0, 'dispatched');
  await before.stop();
  const [claim] = await claimsOf(s.valet.root.processed);
  const live = claim!.liveness as { kind: 'dispatched'; seq: number };
  // What a worker on another host might send back: paths of its own (or forged ones).
  const result = {
    v: 1, kind: 'pv-result', run_id: claim!.run_id, attempt: claim!.attempt, resumed: 0, job_seq: live.seq, worker: 'w9', deliveries: 1,
    record: {
      v: 1, run_id: claim!.run_id,
      claim: { rel: '../../../etc/passwd.running.md', inbox: '/elsewhere', path: '/etc/passwd', run_root: '/tmp/x' },
      agent: { exit_code: 0, duration_ms: 5, last_message: '/etc/shadow', model: 'mock-model', usage: { input_tokens: 7, 'bad key': 3 } },
      publish: { outcome: 'no_changes', branch: 'codex/twice', pr_url: 'javascript:alert(1)' },
    },
    artifacts: { last_message: 'Nothing to change.' },
  };
  const nc = await connect({ servers: s.nats.servers });
  const js = nc.jetstream();
  const data = new TextEncoder().encode(JSON.stringify(result));
  // Delivered twice: as if the valet had settled it and died before the ack.
  await js.publish(`results.${claim!.run_id}`, data, { msgID: 'first' });
  await js.publish(`results.${claim!.run_id}`, data, { msgID: 'again' });
  await js.publish(`results.${claim!.run_id}`, new TextEncoder().encode('{"kind":"pv-result","run_id":"../x"}'), { msgID: 'junk' });
  await nc.drain();
  const recv = await s.startReceiver();
  await s.valet.waitForFinished(1, 30_000);
  await waitFor('the second copy dropped', () => /already settled; dropped/.test(recv.stderr()), 15_000, 100);
  await waitFor('the junk dropped', () => /dropped: run_id "\.\.\/x" is not a run id/.test(recv.stderr()), 15_000, 100);
  t.same((await s.valet.listFinished()).filter((f) => f.endsWith('.md')), ['widget/main/twice.done.md'], 'settled once, as done');
  const settledRecords = recv.stdout().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(settledRecords.length, 1, 'pv-settle saw it once');
  const rec = settledRecords[0] as { claim: { path: string }; agent: { last_message: string; usage: Record<string, number> }; publish: Record<string, unknown>; worker: string };
  t.equal(rec.claim.path, path.join(s.valet.root.inbox, 'widget/main/twice.running.md'), "the claim is the valet's own");
  t.equal(rec.agent.last_message, path.join(s.valet.root.processed, claim!.run_id, 'last-message.md'), 'the last message is a valet path');
  t.same(rec.agent.usage, { input_tokens: 7 }, 'only well-formed token counts kept');
  t.notOk('pr_url' in rec.publish, 'a PR URL that is not http(s) is dropped');
  t.equal(await fsp.readFile(rec.agent.last_message, 'utf8'), 'Nothing to change.', 'the artifact came back');
  await recv.stop();
});

t.test('a worker that dies on the last delivery: the max-deliveries advisory settles the prompt as an error', async (t) => {
  const s = await startScaleOut({ repos: ['widget'], workers: 2, nats: { ack_wait_seconds: 2, max_deliveries: 1 } });
  t.teardown(() => s.close());
  const recv = await s.startReceiver();
  // A command that never answers: this worker's host is about to die.
  const worker = s.startWorker(1, { command: ['sh', '-c', 'cat >/dev/null; sleep 60'] });
  await s.valet.root.dropPrompt('widget/main/orphan.prompt.md', s.valet.prompt('true', 'Orphan'));
  t.equal((await s.dispatch()).code, 0, 'dispatched');
  await waitFor('the job started on w1', () => /: started/.test(worker.stderr()), 30_000, 50);
  await killAllOf('w1 process', () => valetProcesses(s.workerEnv(1).PV_CONFIG!));
  // The server finds a job out of deliveries when a worker asks for the next one.
  const other = s.startWorker(2);
  t.same(await s.valet.waitForFinished(1, 30_000).catch(() => recv.stderr()), ['widget/main/orphan.error.md'], 'settled as an error');
  t.notMatch(other.stderr(), /started/, 'the other worker never got it');
  // pv-settle moves the prompt into finished/ first, then writes the reason beside it.
  const orphanReason = path.join(s.valet.root.finished, 'widget/main/orphan.error.txt');
  await waitFor('the reason beside it', () => fsSync.existsSync(orphanReason), 10_000, 50).catch(() => undefined);
  const reason = await fsp.readFile(orphanReason, 'utf8');
  t.match(reason, /gave up after 1 delivery .*no worker answered/, `the reason says why: ${reason.trim()}`);
  const nc = await connect({ servers: s.nats.servers });
  const jsm = await nc.jetstreamManager();
  // pv-queue recv removes the job only after pv-settle has answered (and the reason is written).
  const jobsLeft = async () => (await jsm.streams.info('PV_JOBS')).state.messages;
  await waitFor('the job removed from the stream', async () => (await jobsLeft()) === 0, 10_000, 100).catch(() => undefined);
  t.equal(await jobsLeft(), 0, 'the undeliverable job was removed from the stream');
  await nc.close();
  await recv.stop();
});

t.test('a worker cut off from NATS stops its command before the lease runs out', async (t) => {
  const s = await startScaleOut({ repos: ['widget'], workers: 1, nats: { ack_wait_seconds: 3 } });
  t.teardown(() => s.close());
  await s.startReceiver();
  const marker = path.join(s.workerRoots[0]!, 'agent-alive');
  const worker = s.startWorker(1, { command: ['sh', '-c', `cat >/dev/null; touch ${marker}; exec sleep 60`] });
  await s.valet.root.dropPrompt('widget/main/cut.prompt.md', s.valet.prompt('true', 'Cut'));
  t.equal((await s.dispatch()).code, 0, 'dispatched');
  await waitFor('the command running', () => fsp.stat(marker).then(() => true, () => false), 30_000, 50);
  const workerConfig = s.workerEnv(1).PV_CONFIG!;
  const sleeping = () => valetProcesses(workerConfig).filter((pid) => /^sleep\0/.test(readCmdline(pid)));
  t.equal(sleeping().length, 1, 'the command runs');
  await s.nats.nodes[0]!.kill();
  await waitFor('the command stopped', () => sleeping().length === 0, 15_000, 100);
  // The worker logs once the stopped command has been reaped, a moment after it is gone from /proc.
  await waitFor('the worker says why', () => /lease lost/.test(worker.stderr()), 5_000, 50).catch(() => undefined);
  t.match(worker.stderr(), /lease lost/, 'the worker says why');
});

function readCmdline(pid: number): string {
  try {
    return fsSync.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
