import * as fs from 'node:fs';
import * as path from 'node:path';
import * as nkeys from 'nkeys.js';
import { LEDGER_DIR, LEDGER_SUBDIRS, loadConfig, type Logger, type ValetConfig } from '@prompt-valet/core';
import { choicesFromConfig, installConfig, renderConfig, type ConfigChoices } from './config-file.js';
import { deploy, planDeployment } from './deploy.js';
import { checkDependencies } from './deps.js';
import { COPYPARTY_DEFAULT_PATH, COPYPARTY_INSTALL_HELP, copypartyConfigPath, findCopyparty, renderCopypartyConfig, COPYPARTY_ACCOUNT } from './file-server.js';
import { COPYPARTY_USER, ensureAcl, ensureCopypartyUser, ensureGroup, ensureMembers, inboxAclEntries, readOnlyAclEntries } from './access.js';
import { ensureDir, ensureFile, ensureSymlink } from './fs-actions.js';
import { GH_TOKEN_CREDENTIAL, LAYOUT_DIRS, LEGACY_REPOS, resolveInRoot, type Layout } from './layout.js';
import type { Reporter } from './report.js';
import { chownCreated, ensureUser, runAction, systemctlIsActive, systemctlIsEnabled, type UserIds } from './system.js';
import { COPYPARTY_UNIT, installUnit, maskUnit, NATS_NKEY_FILES, NATS_SERVER_CONF, renderNatsServerConf, roleUnits, statePathValues, WEB_UNIT, type Role, type UnitValues } from './units.js';

export interface InstallOptions {
  source: string;
  user: string;
  /** the group whose members may drop prompts */
  dropGroup: string;
  /** users to add to the drop group */
  operators: string[];
  web: boolean;
  start: boolean;
  installDeps: boolean;
  /** dispatch: nats: which side of the queue this host is (docs/scale-out.md); undefined: one host, as before */
  role?: Role;
  choices: Omit<ConfigChoices, 'inbox' | 'processed' | 'finished' | 'reposRoot'>;
  env: NodeJS.ProcessEnv;
}


/** Lay the system down; every step reports what it did and a rerun changes nothing. */
export async function install(r: Reporter, layout: Layout, opts: InstallOptions, log: Logger): Promise<void> {
  const templatesDir = path.join(opts.source, 'units');
  const template = fs.readFileSync(path.join(opts.source, 'configs', 'prompt-valet.yaml'), 'utf8');
  const plan = planDeployment(opts.source);
  const d = layout.disk;
  const P = (...p: string[]) => path.posix.join(layout.prefix, ...p);

  const user = opts.user;
  let ids: UserIds | undefined;
  if (layout.live && user !== 'root') ids = ensureUser(r, user, layout.prefix);
  else if (layout.live) ids = { uid: 0, gid: 0 };

  ensureDir(r, d(layout.prefix));
  for (const dir of LAYOUT_DIRS) {
    const isState = dir !== 'config' && dir !== 'scripts';
    if (ensureDir(r, d(P(dir)), isState ? 0o775 : 0o755) && isState) chownCreated(r, d(P(dir)), ids);
  }
  for (const dir of ['codex', 'gh']) {
    if (ensureDir(r, d(P('config', dir)), 0o700)) chownCreated(r, d(P('config', dir)), ids);
  }
  // The pipeline's ledger in processed/ (claims, claim locks, retry entries): made here for the
  // service user, so a tool run by root first (a person, an old --verify) cannot leave a folder
  // the service may not write (the live suite saw every claim lock refused with EACCES).
  for (const sub of LEDGER_SUBDIRS) {
    const dir = d(path.posix.join(P('processed'), LEDGER_DIR, sub));
    if (ensureDir(r, dir, 0o755)) chownCreated(r, dir, ids);
  }
  // Root's alone: systemd reads it before it drops privileges.
  ensureDir(r, d(P('config', 'credentials')), 0o700);

  // /srv/repos: a link to the canonical folder, unless the operator already
  // keeps clones there; then the config points at those instead.
  let reposRoot = P('repos');
  const legacy = d(LEGACY_REPOS);
  const legacyStat = fs.lstatSync(legacy, { throwIfNoEntry: false });
  if (legacyStat?.isDirectory()) {
    reposRoot = LEGACY_REPOS;
    r.emit('skipped', legacy, `existing folder kept; repos_root points at it instead of ${P('repos')}`);
  } else if (ensureSymlink(r, legacy, P('repos'), 'legacy path') === 'kept') {
    r.emit('warning', legacy, `exists and is not a link to ${P('repos')}: left alone`);
  }

  await deploy(r, layout, plan);

  const configDisk = d(layout.configFile);
  const hadConfig = fs.existsSync(configDisk);
  const previous = hadConfig ? choicesFromConfig(fs.readFileSync(configDisk, 'utf8')) : {};
  const rendered = renderConfig(template, { ...previous, ...opts.choices, inbox: P('inbox'), processed: P('processed'), finished: P('finished'), reposRoot });
  await installConfig(r, configDisk, rendered);
  if (!hadConfig && !r.dryRun) chownCreated(r, configDisk, ids, true);
  // The units follow the config as it is on disk (the operator's, if kept).
  const config: ValetConfig = r.dryRun && !hadConfig
    ? loadConfigText(rendered, configDisk)
    : loadConfig({ path: configDisk, env: {} }).config;
  if (hadConfig && opts.choices.fileServer && opts.choices.fileServer !== config.file_server.kind) {
    r.emit('warning', configDisk, `--file-server ${opts.choices.fileServer} not applied: the existing config says file_server.kind: ${config.file_server.kind}; edit it and rerun`);
  }

  // LoadCredential= refuses to start a unit whose file is missing: an empty
  // one is laid down and never overwritten (the operator puts the token in).
  const token = d(P(...GH_TOKEN_CREDENTIAL));
  if (fs.existsSync(token)) r.emit('unchanged', token);
  else await ensureFile(r, token, '', 0o600, 'put the GitHub token here');
  const oldSecrets = d(P('config', 'secrets.env'));
  if (fs.existsSync(oldSecrets) && /^\s*(GH_TOKEN|GITHUB_TOKEN|GH_ENTERPRISE_TOKEN)=/m.test(fs.readFileSync(oldSecrets, 'utf8'))) {
    r.emit('warning', oldSecrets, `no longer read by the units: move the token into ${P(...GH_TOKEN_CREDENTIAL)} (0600 root) and delete it`);
  }

  for (const dep of checkDependencies(config, opts.env)) {
    if (dep.ok) {
      log.info(`found ${dep.name}: ${dep.found} ${dep.detail}`);
      continue;
    }
    if (opts.installDeps && layout.live) runAction(r, `dependency:${dep.name}`, 'sh', ['-c', dep.install]);
    else if (opts.installDeps && r.dryRun) r.emit('ran', `dependency:${dep.name}`, `sh -c '${dep.install}'`);
    else r.emit('warning', `dependency:${dep.name}`, `${dep.detail}; install with: ${dep.install}${opts.installDeps ? ' (--install-deps acts only with --root /)' : ''}`);
  }

  let copypartyCmd: string | undefined;
  if (config.file_server.kind === 'copyparty') {
    copypartyCmd = findCopyparty(layout, config.file_server.copyparty_cmd, opts.env.PATH);
    const conf = d(copypartyConfigPath(layout));
    if (fs.existsSync(conf)) r.emit('unchanged', conf);
    else {
      await ensureFile(r, conf, renderCopypartyConfig(config), 0o640, `account ${COPYPARTY_ACCOUNT}, password inside`);
      if (!r.dryRun) chownCreated(r, conf, ids, true);
    }
    if (!copypartyCmd) r.emit('warning', 'copyparty', `not found (file_server.copyparty_cmd: ${config.file_server.copyparty_cmd}); unit left disabled; ${COPYPARTY_INSTALL_HELP}`);
  }

  // Who may drop prompts: the drop group, root, and Copyparty's own user.
  if (layout.live) {
    ensureGroup(r, opts.dropGroup);
    ensureMembers(r, opts.dropGroup, opts.operators);
    if (config.file_server.kind === 'copyparty') ensureCopypartyUser(r, opts.dropGroup);
    if (!r.dryRun) {
      ensureAcl(r, config.inbox, inboxAclEntries(user, opts.dropGroup), `${opts.dropGroup} and ${user} may create and rename`);
      if (config.file_server.kind === 'copyparty') {
        for (const dir of [config.processed, config.finished]) ensureAcl(r, dir, readOnlyAclEntries(COPYPARTY_USER), `${COPYPARTY_USER} may read`);
      }
    }
  } else if (opts.operators.length) {
    r.emit('skipped', `group:${opts.dropGroup}`, 'staging root: no groups, no ACLs');
  }

  // ReadWritePaths must name real folders: /srv/repos is a link.
  const statePaths = statePathValues(
    layout.prefix,
    [config.inbox, config.processed, config.finished, realSystemPath(layout, config.repos_root), P('logs')],
    [P('config'), P('scripts')],
  );
  const values: UnitValues = {
    PREFIX: layout.prefix,
    CONFIG: layout.configFile,
    USER: user,
    GROUP: user,
    DROP_GROUP: opts.dropGroup,
    COPYPARTY_USER,
    INBOX: config.inbox,
    PROCESSED: config.processed,
    FINISHED: config.finished,
    STATE_PATHS: statePaths.writable,
    READONLY_PATHS: statePaths.readOnly,
    COPYPARTY: copypartyCmd ?? (config.file_server.copyparty_cmd.startsWith('/') ? config.file_server.copyparty_cmd : COPYPARTY_DEFAULT_PATH),
  };
  let unitsChanged = 0;
  const countChange = () => (unitsChanged = r.lines.filter((l) => l.path.startsWith(d('/etc/systemd/system')) && l.action !== 'unchanged').length);
  const units = roleUnits(opts.role);
  for (const u of units.install) await installUnit(r, layout, templatesDir, u, values);
  if (opts.role) {
    if (config.dispatch !== 'nats') r.emit('warning', configDisk, `--role ${opts.role}: set dispatch: nats (and nats.servers) in the config, or the units refuse to run`);
    if (opts.role !== 'worker') {
      // Two NATS identities (user nkeys), made once: the valet's and the one every worker host gets a copy of.
      const natsDir = d(P('config', NATS_NKEY_FILES.valet[0]));
      if (ensureDir(r, natsDir, 0o700)) chownCreated(r, natsDir, ids);
      const publicKeys = { valet: '', worker: '' };
      for (const role of ['valet', 'worker'] as const) {
        const file = d(P('config', ...NATS_NKEY_FILES[role]));
        publicKeys[role] = await ensureNkeySeed(r, file, role, ids);
      }
      const natsConf = d(P('config', NATS_SERVER_CONF));
      if (fs.existsSync(natsConf)) {
        r.emit('unchanged', natsConf);
        if (!/^\s*authorization\s*\{/m.test(fs.readFileSync(natsConf, 'utf8'))) {
          r.emit('warning', natsConf, 'no authorization block: anyone reaching the server may do anything; move it away and rerun for one with the valet and worker identities (docs/scale-out.md, Identities)');
        }
      } else {
        const conf = renderNatsServerConf({ valet: publicKeys.valet, worker: publicKeys.worker, jobsStream: config.nats.jobs_stream });
        await ensureFile(r, natsConf, conf, 0o644, 'a single-host NATS server with JetStream, a valet and a worker identity');
      }
    }
  }
  if (config.file_server.kind === 'copyparty') await installUnit(r, layout, templatesDir, COPYPARTY_UNIT, values);
  else maskUnit(r, layout, COPYPARTY_UNIT);
  if (opts.web) await installUnit(r, layout, templatesDir, WEB_UNIT, values);
  countChange();

  if (layout.live) {
    if (unitsChanged > 0) runAction(r, 'systemd', 'systemctl', ['daemon-reload']);
    const enable: string[] = [...units.enable];
    if (config.file_server.kind === 'copyparty' && copypartyCmd) enable.push(COPYPARTY_UNIT);
    if (opts.web) enable.push(WEB_UNIT);
    for (const u of enable) {
      if (!r.dryRun && systemctlIsEnabled(u) === 'enabled') r.emit('unchanged', `unit:${u}`, 'enabled');
      else runAction(r, `unit:${u}`, 'systemctl', ['enable', u]);
    }
    if (opts.start) {
      const ready = fs.existsSync(configDisk) && fs.existsSync(d(P('scripts', 'pv-watcher')));
      if (!ready && !r.dryRun) r.emit('warning', 'systemd', 'not started: config or scripts missing');
      else if (unitsChanged > 0 || r.dryRun) runAction(r, 'systemd', 'systemctl', ['restart', ...enable]);
      else {
        // Nothing changed: running units are left alone (a rerun restarts nothing).
        const stopped = enable.filter((u) => systemctlIsActive(u) !== 'active');
        for (const u of enable.filter((x) => !stopped.includes(x))) r.emit('unchanged', `unit:${u}`, 'active');
        if (stopped.length) runAction(r, 'systemd', 'systemctl', ['start', ...stopped]);
      }
    }
  }

  summary(log, layout, config, copypartyCmd, opts);
}

function loadConfigText(text: string, file: string): ValetConfig {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'pv-install-'));
  try {
    fs.writeFileSync(path.join(dir, 'c.yaml'), text);
    return loadConfig({ path: path.join(dir, 'c.yaml'), env: {} }).config;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A system path with symlinks resolved inside the root, as a system path again. */
export function realSystemPath(layout: Layout, systemPath: string): string {
  const onDisk = resolveInRoot(layout, systemPath);
  return layout.live ? onDisk : '/' + path.relative(layout.root, onDisk);
}

function summary(log: Logger, layout: Layout, config: ValetConfig, copyparty: string | undefined, opts: InstallOptions): void {
  log.info(`installed under ${layout.disk(layout.prefix)}${layout.live ? '' : ` (staging root ${layout.root}: no user, no systemctl)`}`);
  log.info(`config: ${layout.configFile}; units: ${roleUnits(opts.role).enable.join(', ')}${opts.web ? `, ${WEB_UNIT} (web on ${config.web.host}:${config.web.port})` : ''}`);
  if (config.file_server.kind === 'none') log.info('file_server=none (copyparty.service masked)');
  else {
    log.info(`file_server=copyparty on ${config.file_server.host}:${config.file_server.port}, account ${COPYPARTY_ACCOUNT}, password in ${copypartyConfigPath(layout)}${copyparty ? '' : ' (copyparty not installed: unit left disabled)'}`);
  }
  log.info(`codex login: sudo -u ${opts.user} CODEX_HOME=${path.posix.join(layout.prefix, 'config', 'codex')} codex login (or OPENAI_API_KEY=… in a drop-in: systemctl edit codex-watcher)`);
  log.info(`GitHub token: into ${path.posix.join(layout.prefix, ...GH_TOKEN_CREDENTIAL)} (root, mode 0600; the units load it as a credential)`);
  log.info(`prompts may be dropped by root and members of ${opts.dropGroup} (pv-install --operator USER adds one)`);
  if (!layout.live) log.info('on the target: systemctl daemon-reload && systemctl enable --now codex-watcher.service codex-tree-builder.timer');
  else if (!opts.start) log.info('start with: systemctl start codex-watcher.service codex-tree-builder.timer (or rerun with --start)');
  log.info(`check with: ${path.posix.join(layout.scripts, 'pv-install')} --verify${layout.live ? '' : ` --root ${layout.root}`}`);
}

/**
 * A NATS user nkey seed file (config/nats/<role>.nk, 0600, the service
 * user's: its units connect with it), made once and never overwritten.
 * Returns its public key, for the server config.
 */
async function ensureNkeySeed(r: Reporter, file: string, role: string, ids: UserIds | undefined): Promise<string> {
  if (fs.existsSync(file)) {
    r.emit('unchanged', file);
    try {
      return nkeys.fromSeed(new TextEncoder().encode(fs.readFileSync(file, 'utf8').trim())).getPublicKey();
    } catch {
      r.emit('warning', file, 'not a NATS user nkey seed (SU…): move it away and rerun to get a new one');
      return '';
    }
  }
  const user = nkeys.createUser();
  await ensureFile(r, file, `${new TextDecoder().decode(user.getSeed())}\n`, 0o600, `the ${role}'s NATS identity (nats.nkey_seed_file)`);
  if (!r.dryRun) chownCreated(r, file, ids);
  return user.getPublicKey();
}
