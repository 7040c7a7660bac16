import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG_SCHEMA, loadConfig } from '@prompt-valet/core';
import { missingKeys } from '../src/config-file.js';
import { natsPermissions, renderNatsServerConf } from '../src/units.js';
import { inRoot, PREFIX, pvInstall, REPO, tempRoot } from './fixtures/helpers.js';

const DIRS = ['inbox', 'processed', 'finished', 'config', 'scripts', 'logs', 'repos'];

t.test('installs the layout, the tools and a config with every key into a staging root', async (t) => {
  const root = tempRoot(t, 'layout');
  const run = pvInstall(['--root', root, '--owner', 'acme', '--protocol', 'ssh', '--inbox-mode', 'multi_owner']);
  t.equal(run.status, 0, run.stderr);
  for (const d of DIRS) t.ok(fs.statSync(inRoot(root, `${PREFIX}/${d}`)).isDirectory(), `${d}/ exists`);
  t.equal(fs.readlinkSync(inRoot(root, '/srv/repos')), `${PREFIX}/repos`, '/srv/repos links to the canonical folder');

  const lib = inRoot(root, `${PREFIX}/scripts/lib/node_modules`);
  for (const dep of ['yargs', 'yaml', 'chalk', 'execa', '@prompt-valet/core']) {
    t.ok(fs.existsSync(path.join(lib, dep, 'package.json')), `${dep} deployed`);
  }
  for (const dev of ['@prompt-valet/testkit', 'tap', 'typescript', '@openai/codex', 'playwright-core']) {
    t.notOk(fs.existsSync(path.join(lib, dev)), `dev-only ${dev} not deployed`);
  }
  for (const tool of ['pv-watcher', 'pv-tree', 'pv-claim', 'pv-settle', 'pv-install']) {
    const entry = inRoot(root, `${PREFIX}/scripts/${tool}`);
    fs.accessSync(entry, fs.constants.X_OK);
    t.match(fs.readFileSync(entry, 'utf8'), /^#!\/usr\/bin\/env node\n/, `${tool} keeps its shebang`);
    t.match(fs.realpathSync(entry), new RegExp(`/@prompt-valet/[a-z-]+/bundle/${tool}\\.js$`), `${tool} is the tool's bundle`);
  }
  // The deployed tree lies outside the checkout: only its own lib/ can serve imports.
  const help = spawnSync(inRoot(root, `${PREFIX}/scripts/pv-tree`), ['--help'], { encoding: 'utf8', timeout: 60_000, env: { PATH: '/usr/bin:/bin' } });
  t.equal(help.status, 0, `deployed pv-tree runs with only node: ${help.stderr}`);
  for (const tool of ['pv-watcher', 'pv-tree', 'pv-claim', 'pv-settle', 'pv-install']) {
    const env = { PATH: '/usr/bin:/bin' };
    const deployed = spawnSync(inRoot(root, `${PREFIX}/scripts/${tool}`), ['--help'], { encoding: 'utf8', timeout: 60_000, env });
    const dev = spawnSync(process.execPath, [path.join(REPO, 'packages', tool.slice(3), 'bin', `${tool}.js`), '--help'], { encoding: 'utf8', timeout: 60_000, env });
    t.equal(deployed.stdout, dev.stdout, `${tool}: the bundle's --help (made at build time) is the tool's own`);
  }
  // Not just --help: the bundle itself loads and runs (a usage error goes through yargs, a chunk of its own).
  const bad = spawnSync(inRoot(root, `${PREFIX}/scripts/pv-settle`), ['--bogus'], { encoding: 'utf8', timeout: 60_000, env: { PATH: '/usr/bin:/bin' } });
  t.equal(bad.status, 64, `the deployed pv-settle bundle parses its options: ${bad.stderr}`);
  t.match(bad.stderr, /pv-settle: Unknown argument: bogus/);

  const configFile = inRoot(root, `${PREFIX}/config/prompt-valet.yaml`);
  const text = fs.readFileSync(configFile, 'utf8');
  const loaded = loadConfig({ path: configFile, env: {} });
  t.same(loaded.warnings, [], 'no unknown keys');
  t.same(missingKeys(text), [], `every one of ${Object.keys(CONFIG_SCHEMA).length} documented keys is set`);
  t.equal(loaded.config.watcher.git_default_owner, 'acme');
  t.equal(loaded.config.watcher.git_protocol, 'ssh');
  t.equal(loaded.config.inbox_mode, 'multi_owner');
  t.equal(loaded.config.inbox, `${PREFIX}/inbox`);
  const templateFirstLine = fs.readFileSync(path.join(REPO, 'configs/prompt-valet.yaml'), 'utf8').split('\n')[0]!;
  t.ok(text.startsWith(templateFirstLine), 'the template\'s comments are kept');
  t.equal(fs.statSync(inRoot(root, `${PREFIX}/config/credentials/gh_token`)).mode & 0o777, 0o600, 'the token credential is 0600');
  t.equal(fs.statSync(inRoot(root, `${PREFIX}/config/credentials`)).mode & 0o777, 0o700, 'in a 0700 folder');

  const watcherUnit = fs.readFileSync(inRoot(root, '/etc/systemd/system/codex-watcher.service'), 'utf8');
  t.match(watcherUnit, `ExecStart=${PREFIX}/scripts/pv-watcher --config ${PREFIX}/config/prompt-valet.yaml`);
  t.match(watcherUnit, 'RestartPreventExitStatus=78');
  t.match(watcherUnit, /^Restart=always$/m, 'any death systemd did not ask for restarts it');
  t.match(watcherUnit, `ExecReload=${PREFIX}/scripts/pv-install --check-config --reload-pid $MAINPID --config ${PREFIX}/config/prompt-valet.yaml`);
  t.match(watcherUnit, `LoadCredential=gh_token:${PREFIX}/config/credentials/gh_token`);
  t.notMatch(watcherUnit, /EnvironmentFile=/, 'no token in the environment');
  t.match(watcherUnit, /^Delegate=yes$/m);
  t.notMatch(watcherUnit, /^ProtectControlGroups=/m);
  t.notMatch(watcherUnit, /^RestrictNamespaces=/m, 'bwrap needs user namespaces');
  // One writable mount for the state folders (renames between them never cross a mount), config/ and scripts/ read-only.
  t.match(watcherUnit, new RegExp(`^ReadWritePaths=${PREFIX}$`, 'm'));
  t.match(watcherUnit, new RegExp(`^ReadOnlyPaths=${PREFIX}/config ${PREFIX}/scripts$`, 'm'));
  t.match(watcherUnit, new RegExp(`^ReadWritePaths=${PREFIX}/config/codex ${PREFIX}/config/gh$`, 'm'));
  t.notMatch(watcherUnit, /^MemoryDenyWriteExecute=yes/m);
  t.match(fs.readFileSync(inRoot(root, '/etc/systemd/system/codex-tree-builder.timer'), 'utf8'), /Persistent=true/);
  t.match(run.stderr, /file_server=none/);
});

t.test('a second run reports only unchanged; an edited config survives byte for byte', async (t) => {
  const root = tempRoot(t, 'idem');
  t.equal(pvInstall(['--root', root]).status, 0);
  const second = pvInstall(['--root', root]);
  t.equal(second.status, 0, second.stderr);
  t.same(second.lines.filter((l) => l.action !== 'unchanged'), [], 'nothing but unchanged');
  t.match(second.stderr, /nothing to do/);

  const configFile = inRoot(root, `${PREFIX}/config/prompt-valet.yaml`);
  const edited = fs.readFileSync(configFile, 'utf8') + '# tuned by hand\nextra_key: 1\n';
  fs.writeFileSync(configFile, edited);
  const third = pvInstall(['--root', root, '--owner', 'someone-else']);
  t.equal(third.status, 0, third.stderr);
  t.equal(fs.readFileSync(configFile, 'utf8'), edited, 'the operator\'s config is untouched');
  t.ok(third.lines.some((l) => l.action === 'created' && l.path === `${configFile}.new`), 'the new rendering goes beside it');
  t.ok(third.lines.some((l) => l.action === 'warning' && /unknown key extra_key/.test(l.detail)), 'the unknown key is named');
  const fourth = pvInstall(['--root', root, '--owner', 'someone-else']);
  t.same(fourth.lines.filter((l) => l.action !== 'unchanged' && l.action !== 'warning'), [], 'rerun changes nothing');
  t.equal(fs.readFileSync(configFile, 'utf8'), edited);
});

t.test('--dry-run writes nothing and prints the plan', async (t) => {
  const root = tempRoot(t, 'dry');
  const run = pvInstall(['--root', root, '--dry-run', '--file-server', 'copyparty']);
  t.equal(run.status, 0, run.stderr);
  t.notOk(fs.existsSync(root), 'the root was not even created');
  t.ok(run.lines.length > 20);
  t.ok(run.lines.every((l) => l.dry_run === true), 'every line is marked dry_run');
  t.ok(run.lines.some((l) => l.action === 'created' && l.path === inRoot(root, '/etc/systemd/system/codex-watcher.service')));
});

t.test('--install-deps --dry-run plans the install command of a missing program', async (t) => {
  const root = tempRoot(t, 'deps');
  const run = pvInstall(['--root', root, '--dry-run', '--install-deps'], { PATH: '/usr/bin:/bin' });
  t.equal(run.status, 0, run.stderr);
  const codex = run.lines.find((l) => l.path === 'dependency:codex');
  t.equal(codex?.action, 'ran');
  t.match(codex?.detail, 'npm install -g @openai/codex');
  t.notOk(run.lines.some((l) => l.path === 'dependency:git'), 'git is there: nothing to do');
  const plain = pvInstall(['--root', root, '--dry-run'], { PATH: '/usr/bin:/bin' });
  t.match(plain.lines.find((l) => l.path === 'dependency:codex'), { action: 'warning', detail: /install with: npm install -g @openai\/codex/ });
});

t.test('--file-server none masks copyparty; copyparty writes its config and unit', async (t) => {
  const none = tempRoot(t, 'none');
  t.equal(pvInstall(['--root', none, '--file-server', 'none']).status, 0);
  t.equal(fs.readlinkSync(inRoot(none, '/etc/systemd/system/copyparty.service')), '/dev/null');
  t.notOk(fs.existsSync(inRoot(none, `${PREFIX}/config/copyparty.conf`)));

  const cp = tempRoot(t, 'copyparty');
  const run = pvInstall(['--root', cp, '--file-server', 'copyparty', '--port', '3999']);
  t.equal(run.status, 0, run.stderr);
  const warning = run.lines.find((l) => l.path === 'copyparty');
  t.match(warning, { action: 'warning', detail: /pipx install copyparty.*copyparty-sfx\.py/ }, 'says exactly how to get it');
  t.match(run.stderr, /file_server=copyparty on 0\.0\.0\.0:3999, account valet/);
  const conf = fs.readFileSync(inRoot(cp, `${PREFIX}/config/copyparty.conf`), 'utf8');
  t.match(conf, /p: 3999/);
  t.match(conf, new RegExp(`\\[/inbox\\]\\n  ${PREFIX}/inbox\\n  accs:\\n    rw: valet`), 'inbox writable');
  t.match(conf, new RegExp(`\\[/processed\\]\\n  ${PREFIX}/processed\\n  accs:\\n    r: valet`), 'processed read-only');
  const unit = fs.readFileSync(inRoot(cp, '/etc/systemd/system/copyparty.service'), 'utf8');
  t.match(unit, `ExecStart=/usr/local/bin/copyparty -c ${PREFIX}/config/copyparty.conf`);
  const again = pvInstall(['--root', cp]);
  t.equal(fs.readFileSync(inRoot(cp, `${PREFIX}/config/copyparty.conf`), 'utf8'), conf, 'its password is not regenerated');
  t.same(again.lines.filter((l) => l.action !== 'unchanged' && l.path !== 'copyparty'), []);
});

t.test('an existing real /srv/repos is kept and the config points at it', async (t) => {
  const root = tempRoot(t, 'legacy');
  fs.mkdirSync(inRoot(root, '/srv/repos/acme-app'), { recursive: true });
  const run = pvInstall(['--root', root]);
  t.equal(run.status, 0, run.stderr);
  t.ok(fs.lstatSync(inRoot(root, '/srv/repos')).isDirectory());
  t.match(run.lines.find((l) => l.path === inRoot(root, '/srv/repos')), { action: 'skipped', detail: /repos_root points at it/ });
  t.equal(loadConfig({ path: inRoot(root, `${PREFIX}/config/prompt-valet.yaml`), env: {} }).config.repos_root, '/srv/repos');
});

t.test('--uninstall removes units and scripts, keeps operator data', async (t) => {
  const root = tempRoot(t, 'uninstall');
  t.equal(pvInstall(['--root', root]).status, 0);
  fs.writeFileSync(inRoot(root, `${PREFIX}/inbox/x.prompt.md`), '# keep me\n');
  const run = pvInstall(['--root', root, '--uninstall']);
  t.equal(run.status, 0, run.stderr);
  t.notOk(fs.existsSync(inRoot(root, '/etc/systemd/system/codex-watcher.service')));
  t.notOk(fs.existsSync(inRoot(root, `${PREFIX}/scripts`)));
  t.notOk(fs.existsSync(inRoot(root, '/srv/repos')));
  t.equal(fs.readFileSync(inRoot(root, `${PREFIX}/inbox/x.prompt.md`), 'utf8'), '# keep me\n');
  for (const d of ['inbox', 'processed', 'finished', 'repos', 'config', 'logs']) t.ok(fs.existsSync(inRoot(root, `${PREFIX}/${d}`)), `${d} kept`);
});

t.test('who may drop prompts: pv-web on a drop-group socket, Copyparty as its own user writing the inbox only', async (t) => {
  const root = tempRoot(t, 'access');
  const run = pvInstall(['--root', root, '--web', '--file-server', 'copyparty', '--operator', 'alice']);
  t.equal(run.status, 0, run.stderr);
  const config = loadConfig({ path: inRoot(root, `${PREFIX}/config/prompt-valet.yaml`), env: {} }).config;
  t.equal(config.web.socket, '/run/prompt-valet-web/web.sock', '--web serves pv-web on a socket');
  const web = fs.readFileSync(inRoot(root, '/etc/systemd/system/prompt-valet-web.service'), 'utf8');
  t.match(web, /^Group=prompt-valet-drop$/m, 'the socket belongs to the drop group');
  t.match(web, /^RuntimeDirectory=prompt-valet-web$/m);
  const copyparty = fs.readFileSync(inRoot(root, '/etc/systemd/system/copyparty.service'), 'utf8');
  t.match(copyparty, /^User=prompt-valet-copyparty$/m, 'Copyparty runs as its own user');
  t.match(copyparty, /^SupplementaryGroups=prompt-valet-drop$/m);
  t.match(copyparty, new RegExp(`^ReadWritePaths=${PREFIX}/inbox$`, 'm'), 'it may write the inbox only');
  t.match(fs.readFileSync(inRoot(root, `${PREFIX}/config/copyparty.conf`), 'utf8'), /hist: \/var\/cache\/prompt-valet-copyparty/, 'its index is not kept beside the served files');
  t.ok(run.lines.some((l) => l.action === 'skipped' && /staging root/.test(l.detail)), 'groups and ACLs are left to the live system');
});

t.test('--check-config: exit 78 and one line naming the key for a bad config, 0 for a good one', async (t) => {
  const root = tempRoot(t, 'check');
  t.equal(pvInstall(['--root', root]).status, 0);
  const configFile = inRoot(root, `${PREFIX}/config/prompt-valet.yaml`);
  t.equal(pvInstall(['--check-config', '--config', configFile]).status, 0);
  fs.writeFileSync(configFile, fs.readFileSync(configFile, 'utf8').replace(/max_parallel: \d+/, 'max_parallel: lots'));
  const bad = pvInstall(['--check-config', '--config', configFile]);
  t.equal(bad.status, 78);
  t.match(bad.stderr, /max_parallel/);
});

t.test('--check-config --reload-pid: SIGHUP only once the watcher catches it (reload right after a start)', async (t) => {
  const root = tempRoot(t, 'reload');
  t.equal(pvInstall(['--root', root]).status, 0);
  const configFile = inRoot(root, `${PREFIX}/config/prompt-valet.yaml`);
  // Stands for a pv-watcher still loading its modules: no SIGHUP handler for the first 1.5 s.
  const { spawn } = await import('node:child_process');
  // env -i: the test runner's NODE_OPTIONS would load a SIGHUP handler of its own into the child.
  const slow = spawn('/usr/bin/env', ['-i', process.execPath, '-e', 'setTimeout(() => { process.on("SIGHUP", () => { console.log("reloaded"); process.exit(0); }); }, 1500); setTimeout(() => {}, 20000);'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => slow.kill('SIGKILL'));
  let out = '';
  slow.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  // 'close', not 'exit': 'exit' may come before its stdout ("reloaded") has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => slow.on('close', (code, signal) => resolve({ code, signal })));
  const reload = pvInstall(['--check-config', '--reload-pid', String(slow.pid), '--config', configFile]);
  t.equal(reload.status, 0, reload.stderr);
  t.same(await exited, { code: 0, signal: null }, 'the process was not killed by SIGHUP: it handled it');
  t.equal(out.trim(), 'reloaded');
  const gone = pvInstall(['--check-config', '--reload-pid', String(slow.pid), '--config', configFile]);
  t.equal(gone.status, 75, 'a watcher that is gone: not reloaded, temporary failure');
  t.match(gone.stderr, /is gone/);
});

t.test('the state folders share one writable mount when they lie under the prefix', async (t) => {
  const { statePathValues } = await import('../src/units.js');
  t.same(statePathValues('/srv/pv', ['/srv/pv/inbox', '/srv/pv/processed', '/srv/pv/finished', '/srv/pv/repos', '/srv/pv/logs'], ['/srv/pv/config', '/srv/pv/scripts']), {
    writable: '/srv/pv',
    readOnly: '/srv/pv/config /srv/pv/scripts',
  });
  // Moved elsewhere by the config: each folder on its own (documented: inbox and finished should share a mount).
  t.same(statePathValues('/srv/pv', ['/data/inbox', '/srv/pv/processed', '/srv/pv/finished'], ['/srv/pv/config']), {
    writable: '/data/inbox /srv/pv/processed /srv/pv/finished',
    readOnly: '',
  });
  t.same(statePathValues('/srv/pv', ['/srv/pvx/inbox'], []).writable, '/srv/pvx/inbox', 'a sibling with the prefix as a name prefix is not inside');
});

t.test('--role (dispatch: nats): valet adds pv-results and a NATS config, worker installs pv-worker alone; --verify passes both', async (t) => {
  const both = tempRoot(t, 'role-both');
  const run = pvInstall(['--root', both, '--role', 'both']);
  t.equal(run.status, 0, run.stderr);
  const unit = (root: string, name: string) => inRoot(root, `/etc/systemd/system/${name}`);
  for (const u of ['codex-watcher.service', 'pv-results.service', 'pv-worker.service']) t.ok(fs.existsSync(unit(both, u)), `${u} installed`);
  t.match(fs.readFileSync(unit(both, 'pv-worker.service'), 'utf8'), `ExecStart=${PREFIX}/scripts/pv-queue work jobs --slots 2 --config ${PREFIX}/config/prompt-valet.yaml -- sh -c 'pv-clone | pv-run-codex | pv-publish'`);
  t.match(fs.readFileSync(unit(both, 'pv-results.service'), 'utf8'), /pv-queue recv results .* -- pv-settle .*\| pv-notify/);
  t.match(fs.readFileSync(inRoot(both, `${PREFIX}/config/nats-server.conf`), 'utf8'), /jetstream \{/, 'a ready single-host nats-server config');
  const seeds = ['valet', 'worker'].map((role) => inRoot(both, `${PREFIX}/config/nats/${role}.nk`));
  for (const seed of seeds) {
    t.match(fs.readFileSync(seed, 'utf8'), /^SU[A-Z2-7]{56}\n$/, `${seed}: a user nkey seed`);
    t.equal(fs.statSync(seed).mode & 0o777, 0o600, `${seed}: 0600`);
  }
  const natsConf = fs.readFileSync(inRoot(both, `${PREFIX}/config/nats-server.conf`), 'utf8');
  t.equal((natsConf.match(/\{ nkey: U[A-Z2-7]{55}, permissions/g) ?? []).length, 2, 'the server config names both identities, each with its permissions');
  const seedsBefore = seeds.map((f) => fs.readFileSync(f, 'utf8'));
  t.ok(run.lines.some((l) => l.action === 'warning' && /set dispatch: nats/.test(l.detail)), 'the config still says dispatch: local: a warning says what to set');
  fs.accessSync(inRoot(both, `${PREFIX}/scripts/pv-queue`), fs.constants.X_OK);
  const again = pvInstall(['--root', both, '--role', 'both']);
  t.same(again.lines.filter((l) => l.action !== 'unchanged' && l.action !== 'warning'), [], 'a second run changes nothing');
  t.same(seeds.map((f) => fs.readFileSync(f, 'utf8')), seedsBefore, 'the identities are made once');

  const worker = tempRoot(t, 'role-worker');
  t.equal(pvInstall(['--root', worker, '--role', 'worker']).status, 0);
  t.ok(fs.existsSync(unit(worker, 'pv-worker.service')), 'the worker unit');
  t.notOk(fs.existsSync(unit(worker, 'codex-watcher.service')), 'no watcher on a worker host');
  t.notOk(fs.existsSync(inRoot(worker, `${PREFIX}/config/nats-server.conf`)), 'no NATS server config on a worker host');
  t.notOk(fs.existsSync(inRoot(worker, `${PREFIX}/config/nats`)), 'no identities made on a worker host (it gets a copy of worker.nk)');
  for (const root of [both, worker]) {
    const verify = pvInstall(['--verify', '--root', root]);
    const units = verify.lines.find((l) => l.check === 'units');
    t.equal(units?.ok, true, `units verify (${root === worker ? "worker" : "both"}): ${units?.detail}`);
  }
});

t.test('renderNatsServerConf: public keys in, text out; without keys no authorization; a worker may not send jobs nor touch streams', (t) => {
  t.notMatch(renderNatsServerConf(), /authorization/, 'no identities, no authorization block');
  const valet = `U${'A'.repeat(55)}`;
  const worker = `U${'B'.repeat(55)}`;
  const conf = renderNatsServerConf({ valet, worker, jobsStream: 'JOBS2' });
  t.match(conf, `{ nkey: ${valet}, permissions:`, 'the valet');
  t.match(conf, `{ nkey: ${worker}, permissions:`, 'the worker');
  const p = natsPermissions({ valet, worker, jobsStream: 'JOBS2' });
  t.notOk(p.worker.publish.allow.some((s) => s.startsWith('jobs.') || s === '>' || s.startsWith('$JS.API.STREAM') || s === '$JS.API.>'), 'the worker may not publish jobs nor call the stream API');
  t.ok(p.worker.publish.allow.includes('$JS.API.CONSUMER.MSG.NEXT.JOBS2.pv-workers'), 'the worker pulls from its consumer on the configured jobs stream');
  t.ok(p.valet.publish.allow.includes('jobs.>'), 'the valet sends jobs');
  t.end();
});
