import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { connect, nkeyAuthenticator, nkeys, type NatsConnection } from 'nats';
import { renderNatsServerConf } from '@prompt-valet/install/units';
import { waitFor } from '@prompt-valet/testkit';
import { authenticatorFor } from '../src/queue-connection.js';
import { startScaleOut } from './lib/scale-out.js';

/**
 * Per-role NATS identities (issue 19, docs/scale-out.md "Identities"): a
 * server configured by pv-install's renderer with two fresh user nkeys runs
 * a dispatch end to end, the valet's receiver and a worker each with its own
 * seed; the worker's identity is refused everything else it might try.
 */
const seedText = (u: { getSeed(): Uint8Array }) => new TextDecoder().decode(u.getSeed());
const withSeed = (seed: string) => nkeyAuthenticator(new TextEncoder().encode(seed));

t.test('a worker identity takes jobs and publishes results, nothing else; no identity, no connection', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-nats-auth-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const valet = nkeys.createUser();
  const worker = nkeys.createUser();
  const valetSeedFile = path.join(dir, 'valet.nk');
  const workerSeedFile = path.join(dir, 'worker.nk');
  await fsp.writeFile(valetSeedFile, `${seedText(valet)}\n`, { mode: 0o600 });
  await fsp.writeFile(workerSeedFile, `${seedText(worker)}\n`, { mode: 0o600 });
  // The renderer's text as pv-install writes it; the test's flags set port and store.
  const conf = renderNatsServerConf({ valet: valet.getPublicKey(), worker: worker.getPublicKey() }).replace(/^\s*store_dir: .*\n/m, '');

  const s = await startScaleOut({ repos: ['widget'], workers: 1, natsAuth: { conf, valetSeedFile, workerSeedFile } });
  t.teardown(() => s.close());
  const recv = await s.startReceiver();
  const w = s.startWorker(1);
  await s.valet.root.dropPrompt('widget/main/auth.prompt.md', s.valet.prompt('echo hi > note.txt', 'Auth'));
  const d = await s.dispatch();
  t.equal(d.code, 0, `the dispatch pipeline ran with the valet's identity: ${d.stderr}`);
  const finished = await s.valet.waitForFinished(1, 25_000).catch((err: unknown) => {
    t.fail(`${(err as Error).message}\nrecv: ${recv.stderr()}\nworker: ${w.stderr()}`);
    return [];
  });
  t.same(
    finished.filter((f) => f.endsWith('.done.md')).map((f) => path.basename(f)),
    ['auth.done.md'],
    'the prompt settled done: the worker identity may take the job and publish its result',
  );
  t.notMatch(recv.stderr() + w.stderr(), /permissions violation/i, 'neither role was refused anything it needs');

  const servers = s.nats.servers;
  const conns: NatsConnection[] = [];
  t.teardown(() => Promise.all(conns.map((c) => c.close())));
  const open = async (seed: string) => {
    const nc = await connect({ servers, authenticator: withSeed(seed), maxReconnectAttempts: 0 });
    conns.push(nc);
    return nc;
  };

  const asWorker = await open(seedText(worker));
  const errors: string[] = [];
  void (async () => {
    for await (const st of asWorker.status()) if (st.type === 'error') errors.push(String(st.data));
  })();
  asWorker.publish('jobs.x', 'a job from a worker');
  await asWorker.flush();
  await waitFor('a permissions violation for jobs.x', () => errors.some((e) => /PERMISSIONS_VIOLATION/.test(e)), 5_000, 50).catch(() => undefined);
  t.ok(
    errors.some((e) => /PERMISSIONS_VIOLATION/.test(e)),
    `publishing to jobs.x with the worker's identity is a permissions violation (${errors.join('; ')})`,
  );
  const workerJsm = await asWorker.jetstreamManager({ checkAPI: false, timeout: 2_000 });
  await t.rejects(workerJsm.streams.delete('PV_JOBS'), 'the worker cannot delete the jobs stream');
  await t.rejects(workerJsm.streams.add({ name: 'EVIL', subjects: ['evil.>'] }), 'the worker cannot make a stream');
  await t.rejects(workerJsm.streams.getMessage('PV_RESULTS', { seq: 1 }), 'the worker cannot read the results stream');
  await t.rejects(workerJsm.consumers.add('PV_RESULTS', { durable_name: 'peek' }), 'the worker cannot make a consumer on the results stream');

  // The same calls with the valet's identity are answered: the refusals above are the worker's permissions.
  const valetJsm = await (await open(seedText(valet))).jetstreamManager({ checkAPI: false, timeout: 5_000 });
  await t.resolves(valetJsm.streams.add({ name: 'PROBE', subjects: ['probe.>'] }), 'the valet may make a stream');
  await t.resolves(valetJsm.streams.delete('PROBE'), 'and delete it');
  t.ok((await valetJsm.streams.info('PV_JOBS')).config, 'the jobs stream is still there');
  await t.rejects(valetJsm.streams.getMessage('PV_JOBS', { last_by_subj: 'jobs.x' }), /no message found|not found/i, 'the worker\'s job never reached the jobs stream');

  await t.rejects(connect({ servers, authenticator: withSeed(seedText(nkeys.createUser())), maxReconnectAttempts: 0 }), /authorization violation/i, 'an unknown identity cannot connect');
  await t.rejects(connect({ servers, maxReconnectAttempts: 0 }), /authorization violation/i, 'no identity, no connection');
});

t.test('nats.nkey_seed_file: refused with creds_file, unreadable or not a seed, one line naming it (exit 78)', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-nats-seed-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const good = path.join(dir, 'ok.nk');
  await fsp.writeFile(good, `${seedText(nkeys.createUser())}\n`);
  const bad = path.join(dir, 'bad.nk');
  await fsp.writeFile(bad, 'SOMETHING ELSE\n');
  t.ok(authenticatorFor({ creds_file: '', nkey_seed_file: good }), 'a seed file gives an authenticator');
  t.equal(authenticatorFor({ creds_file: '', nkey_seed_file: '' }), undefined, 'none, no identity');
  const refused = (creds_file: string, nkey_seed_file: string, re: RegExp, what: string) =>
    t.throws(() => authenticatorFor({ creds_file, nkey_seed_file }), { exitCode: 78, message: re }, what);
  refused('/x.creds', good, /^nats\.creds_file and nats\.nkey_seed_file are both set/, 'both set');
  refused('', path.join(dir, 'missing.nk'), /^nats\.nkey_seed_file .*missing\.nk: cannot read it/, 'unreadable');
  refused('', bad, /^nats\.nkey_seed_file .*bad\.nk: not a user nkey seed/, 'not a seed');
});
