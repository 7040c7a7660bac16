import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { loadConfig, type ValetConfig } from '@prompt-valet/core';
import { credentialProblem, inboxAclEntries, missingAclEntries } from './access.js';
import { missingKeys } from './config-file.js';
import { runCommand } from './system.js';
import { copypartyConfigPath, findCopyparty, COPYPARTY_INSTALL_HELP } from './file-server.js';
import { GH_TOKEN_CREDENTIAL, LAYOUT_DIRS, LEGACY_REPOS, resolveInRoot, type Layout } from './layout.js';
import { CORE_UNITS, COPYPARTY_UNIT, RESULTS_UNIT, unitPath, WEB_UNIT, WORKER_UNIT } from './units.js';

/**
 * `pv-install --verify`: the installer contract's checklist, run against an
 * installed root. Each item is one line `{"v":1,"check":…,"ok":…,"detail":…}`.
 */
export interface CheckResult {
  v: 1;
  check: string;
  ok: boolean;
  detail: string;
}

const TOOL_TIMEOUT_MS = 120_000;

export function verifyInstall(layout: Layout, env: NodeJS.ProcessEnv): CheckResult[] {
  const results: CheckResult[] = [];
  const add = (check: string, ok: boolean, detail: string) => results.push({ v: 1, check, ok, detail });
  const d = layout.disk;
  const P = (...p: string[]) => path.posix.join(layout.prefix, ...p);

  const missingDirs = LAYOUT_DIRS.filter((x) => !isDir(d(P(x))));
  const legacy = fs.lstatSync(d(LEGACY_REPOS), { throwIfNoEntry: false });
  const legacyOk = legacy?.isDirectory() || (legacy?.isSymbolicLink() && isDir(resolveInRoot(layout, LEGACY_REPOS)));
  add('layout', missingDirs.length === 0 && Boolean(legacyOk),
    missingDirs.length > 0 ? `missing: ${missingDirs.map((x) => P(x)).join(', ')}`
      : !legacyOk ? `${LEGACY_REPOS} is missing or a broken link` : `${layout.prefix}/{${LAYOUT_DIRS.join(',')}} and ${LEGACY_REPOS}`);

  const tools = ['pv-watcher', 'pv-tree', 'pv-claim', 'pv-resolve', 'pv-clone', 'pv-run-codex', 'pv-publish', 'pv-settle'];
  const badTools = tools.filter((t) => !isExecutable(d(P('scripts', t))));
  add('scripts', badTools.length === 0, badTools.length ? `missing or not executable: ${badTools.join(', ')}` : `${tools.length} tools in ${P('scripts')}`);

  let config: ValetConfig | undefined;
  const configDisk = d(layout.configFile);
  try {
    const loaded = loadConfig({ path: configDisk, env: {} });
    const missing = missingKeys(fs.readFileSync(configDisk, 'utf8'));
    const problems = [...loaded.warnings, ...(missing.length ? [`keys not set: ${missing.join(', ')}`] : [])];
    config = loaded.config;
    add('config', problems.length === 0, problems.length ? problems.join('; ') : `${layout.configFile} parses and sets every documented key`);
  } catch (err) {
    add('config', false, (err as Error).message);
  }

  // The tools run against this root: in a staging root the config's absolute
  // paths are re-anchored inside it through a temporary copy.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-verify-'));
  try {
    if (config) {
      const runConfig = layout.live ? configDisk : stagingConfig(layout, configDisk, config, scratch);
      const toolEnv = { ...env, PATH: `${d(P('scripts'))}:${env.PATH ?? '/usr/bin:/bin'}`, PV_CONFIG: runConfig };
      // On the running system the check runs as the service does, as its user: root would make
      // ledger folders (and claim prompts) the service could not use afterwards.
      const serviceUser = layout.live ? (unitSetting(layout, 'User') ?? 'prompt-valet') : 'root';
      const watcher = d(P('scripts', 'pv-watcher'));
      add(
        'pv-watcher --once',
        ...(serviceUser === 'root'
          ? runTool(watcher, ['--once', '--config', runConfig], toolEnv)
          : runTool('runuser', ['-u', serviceUser, '--', 'env', `PATH=${toolEnv.PATH}`, `PV_CONFIG=${runConfig}`, watcher, '--once', '--config', runConfig], toolEnv, `pv-watcher --once (as ${serviceUser})`,
              // the unit's WorkingDirectory: the caller's own folder may be closed to the service user
              d(layout.prefix))),
      );
    } else {
      add('pv-watcher --once', false, 'not run: the config does not load');
    }
    add('pv-tree --help', ...runTool(d(P('scripts', 'pv-tree')), ['--help'], env));

    // A worker host (pv-install --role worker) has no watcher or tree builder.
    const workerOnly = fs.existsSync(unitPath(layout, WORKER_UNIT)) && !fs.existsSync(unitPath(layout, CORE_UNITS[0]));
    const units: string[] = workerOnly ? [] : [...CORE_UNITS];
    if (fs.existsSync(unitPath(layout, WEB_UNIT))) units.push(WEB_UNIT);
    for (const u of [RESULTS_UNIT, WORKER_UNIT]) if (fs.existsSync(unitPath(layout, u))) units.push(u);
    const copyparty = fs.lstatSync(unitPath(layout, COPYPARTY_UNIT), { throwIfNoEntry: false });
    const masked = copyparty?.isSymbolicLink() && fs.readlinkSync(unitPath(layout, COPYPARTY_UNIT)) === '/dev/null';
    const kind = config?.file_server.kind;
    if (kind === 'none' || (!config && masked)) {
      add('file server', Boolean(masked), masked ? 'file_server=none, copyparty.service masked' : 'file_server=none but copyparty.service is not masked');
    } else if (config) {
      const conf = d(copypartyConfigPath(layout));
      const cmd = findCopyparty(layout, config.file_server.copyparty_cmd, env.PATH);
      const ok = Boolean(copyparty?.isFile()) && fs.existsSync(conf) && Boolean(cmd);
      add('file server', ok, ok ? `copyparty ${cmd} on port ${config.file_server.port}, ${copypartyConfigPath(layout)}`
        : !copyparty?.isFile() ? 'copyparty.service is missing'
          : !fs.existsSync(conf) ? `${copypartyConfigPath(layout)} is missing`
            : `copyparty not found; ${COPYPARTY_INSTALL_HELP}`);
      if (ok) units.push(COPYPARTY_UNIT);
    }
    add('units', ...verifyUnits(layout, units, scratch));
    const tokenFile = d(P(...GH_TOKEN_CREDENTIAL));
    const tokenProblem = layout.live ? credentialProblem(tokenFile) : undefined;
    const emptyToken = layout.live && !tokenProblem && fs.existsSync(tokenFile) && fs.statSync(tokenFile).size === 0 && config?.watcher.publisher === 'gh';
    add('credential', !tokenProblem && !emptyToken, tokenProblem ?? (emptyToken ? `${P(...GH_TOKEN_CREDENTIAL)} is empty: put the GitHub token in it` : `${P(...GH_TOKEN_CREDENTIAL)} root 0600, loaded by the units as gh_token`));
    if (layout.live && config) {
      const user = unitSetting(layout, 'User') ?? 'prompt-valet';
      if (user !== 'root') {
        const readable = runCommand('runuser', ['-u', user, '--', 'test', '-r', tokenFile], 30_000).ok;
        add('credential not readable by the service', !readable, readable ? `${user} can read ${tokenFile}: chmod 0600 and chown root` : `${user} cannot read it directly`);
      }
      add('drop access', ...verifyDropAccess(config.inbox, user));
      add('jail', ...verifyJail(layout, user));
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return results;
}

/** A `Key=value` of the installed watcher unit's [Service] section. */
function unitSetting(layout: Layout, key: string): string | undefined {
  const text = fs.readFileSync(unitPath(layout, 'codex-watcher.service'), 'utf8');
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
  return m?.[1];
}

/** The inbox carries the drop rule, and the service user really can create in it. */
function verifyDropAccess(inbox: string, user: string): [boolean, string] {
  const acl = runCommand('getfacl', ['--omit-header', '--absolute-names', inbox], 30_000).stdout;
  const dropGroup = /^default:group:([^:]+):rwx$/m.exec(acl)?.[1];
  if (!dropGroup) return [false, `${inbox} has no default ACL for a drop group: rerun pv-install`];
  const missing = missingAclEntries(inbox, inboxAclEntries(user, dropGroup));
  if (missing.length) return [false, `${inbox} lacks ACL entries ${missing.join(', ')}: rerun pv-install`];
  const writable = runCommand('runuser', ['-u', user, '--', 'test', '-w', inbox], 30_000).ok;
  return writable ? [true, `root and members of ${dropGroup} may drop prompts; ${user} may claim them`] : [false, `${user} cannot write ${inbox}`];
}

/** The hardening the watcher unit runs under, to probe the jail with. */
const JAIL_PROBE_SETTINGS = ['User', 'Group', 'NoNewPrivileges', 'PrivateTmp', 'PrivateDevices', 'ProtectSystem', 'ProtectHome', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectClock', 'ProtectHostname', 'ProtectProc', 'RestrictSUIDSGID', 'RestrictRealtime', 'LockPersonality', 'RestrictAddressFamilies', 'RestrictNamespaces', 'SystemCallFilter', 'Delegate'];

/** bwrap, as pv-run-codex starts it, works as the service user under the unit's settings. */
function verifyJail(layout: Layout, user: string): [boolean, string] {
  const props = JAIL_PROBE_SETTINGS.flatMap((k) => {
    const v = unitSetting(layout, k);
    return v === undefined ? [] : ['-p', `${k}=${v}`];
  });
  const probe = ['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--new-session', 'true'];
  const res = runCommand('systemd-run', ['--wait', '--pipe', '--quiet', '--collect', ...props, '--', ...probe], TOOL_TIMEOUT_MS);
  if (res.ok) return [true, `bwrap runs as ${user} under codex-watcher.service's hardening`];
  return [false, `bwrap fails as ${user} under the unit's hardening: ${res.stderr.trim().split('\n').slice(-1)[0] ?? ''}`];
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function stagingConfig(layout: Layout, configDisk: string, config: ValetConfig, scratch: string): string {
  const doc = YAML.parseDocument(fs.readFileSync(configDisk, 'utf8'));
  doc.setIn(['inbox'], resolveInRoot(layout, config.inbox));
  doc.setIn(['processed'], resolveInRoot(layout, config.processed));
  doc.setIn(['finished'], resolveInRoot(layout, config.finished));
  doc.setIn(['repos_root'], resolveInRoot(layout, config.repos_root));
  const file = path.join(scratch, 'prompt-valet.yaml');
  fs.writeFileSync(file, doc.toString());
  return file;
}

function runTool(file: string, args: string[], env: NodeJS.ProcessEnv, name = `${path.basename(file)} ${args[0]}`, cwd?: string): [boolean, string] {
  const res = spawnSync(file, args, { env, encoding: 'utf8', timeout: TOOL_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  if (res.error) return [false, `${name}: ${res.error.message}`];
  if (res.status === 0) return [true, `${name} exited 0`];
  const last = (res.stderr ?? '').trim().split('\n')[0] ?? '';
  return [false, `${name} exited ${res.status ?? res.signal}${last ? `: ${last}` : ''}`];
}

/**
 * systemd-analyze verify, any output counting as a failure (warnings exit 0).
 * A staging root has no distribution units (sysinit.target, …), so the check
 * runs in a scratch root holding this system's units, the installed units,
 * and a copy of each ExecStart program at its path (mode kept), which is
 * everything verify reads.
 */
export function verifyUnits(layout: Layout, units: string[], scratch: string): [boolean, string] {
  let root = '/';
  if (!layout.live) {
    root = path.join(scratch, 'root');
    for (const sys of ['/usr/lib/systemd/system', '/lib/systemd/system']) {
      if (isDir(sys)) {
        fs.cpSync(sys, path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
        break;
      }
    }
    for (const u of units) {
      const text = fs.readFileSync(unitPath(layout, u), 'utf8');
      fs.mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
      fs.writeFileSync(path.join(root, 'etc/systemd/system', u), text);
      for (const m of text.matchAll(/^Exec(?:Start|Reload)=(\S+)/gm)) {
        const prog = m[1]!;
        // A system program (/bin/kill) comes from this machine when the root lacks it.
        const inRoot = resolveInRoot(layout, prog);
        const real = fs.existsSync(inRoot) || prog.startsWith(layout.prefix) ? inRoot : prog;
        if (!fs.existsSync(real)) continue; // verify reports it
        fs.mkdirSync(path.join(root, path.dirname(prog)), { recursive: true });
        fs.copyFileSync(real, path.join(root, prog));
        fs.chmodSync(path.join(root, prog), fs.statSync(real).mode & 0o7777);
      }
    }
  }
  const res = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8', timeout: TOOL_TIMEOUT_MS });
  if (res.error) return [false, `systemd-analyze: ${res.error.message}`];
  const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
  if (res.status !== 0 || output) return [false, `systemd-analyze verify: ${output || `exit ${res.status}`}`];
  return [true, `${units.join(', ')} verify clean`];
}
