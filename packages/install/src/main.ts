import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, defineTool, EX, ToolError } from '@prompt-valet/core';
import { DEFAULT_DROP_GROUP } from './access.js';
import { ROLES, WEB_SOCKET, type Role } from './units.js';
import { DeployError } from './deploy.js';
import { install } from './install.js';
import { makeLayout } from './layout.js';
import { sendReload } from './reload.js';
import { Reporter } from './report.js';
import { uninstall } from './uninstall.js';
import { verifyInstall } from './verify.js';

interface InstallArgs {
  root: string;
  prefix: string;
  source: string;
  user: string;
  'drop-group': string;
  operator: string[];
  owner?: string;
  host?: string;
  protocol?: string;
  'inbox-mode'?: string;
  'file-server'?: string;
  port?: number;
  web: boolean;
  role?: Role;
  start: boolean;
  'install-deps': boolean;
  'dry-run': boolean;
  verify: boolean;
  uninstall: boolean;
  'check-config': boolean;
  'reload-pid'?: number;
}

/** The checkout this pv-install was built in: packages/install/dist/ → ../../.. */
const DEFAULT_SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const main = defineTool<InstallArgs>({
  name: 'pv-install',
  summary: 'pv-install — lay Prompt Valet down under /srv/prompt-valet with its systemd units',
  usage: `pv-install [--root DIR] [--prefix DIR] [--owner NAME] [--operator USER]… [--file-server copyparty|none] [--web] [--role valet|worker|both] [--start] [--dry-run]
  pv-install --verify [--root DIR] [--prefix DIR]
  pv-install --check-config [--config FILE]
  pv-install --uninstall [--root DIR] [--prefix DIR]`,
  epilogue: `Creates {inbox,processed,finished,config,scripts,logs,repos} under the prefix,
/srv/repos -> <prefix>/repos, deploys the built tools into <prefix>/scripts
(each runs as its bundle, made by make build, with only node; a missing or
stale bundle is refused), writes config/prompt-valet.yaml from
configs/prompt-valet.yaml (an existing config is never overwritten: a .new
goes beside it), writes the units into /etc/systemd/system, and on the live
system (--root /) creates the service user and the drop group (its
members and root may drop prompts anywhere in the inbox: default ACLs),
adds each --operator to it, and enables the units. --check-config loads
the config as the watcher does and exits 78 with one line if it is bad;
with --reload-pid PID it then sends SIGHUP to that pv-watcher once the
process catches SIGHUP (systemctl reload codex-watcher runs this).
With --root DIR everything goes under DIR: no user, no chown, no systemctl.
--role (dispatch: nats, docs/scale-out.md): valet adds pv-results.service,
two NATS identities config/nats/valet.nk and worker.nk (nkey seeds, 0600)
and a single-host config/nats-server.conf letting in only those two, each
with its role's permissions (none of them ever overwritten); worker
installs pv-worker.service instead of the watcher and tree builder; both
installs all of them.

Output: one JSON line per action on stdout,
  {"v":1,"action":"created|updated|unchanged|skipped|warning|removed|ran","path":…,"detail":…}
("dry_run":true on each with --dry-run); a summary on stderr. A second run
reports only "unchanged". --verify prints one line per checklist item,
  {"v":1,"check":…,"ok":true|false,"detail":…}

Exit status:
  0   installed / every check passed      1   --verify: a check failed
  64  bad command line    66  not a built Prompt Valet checkout (--source)
  70  internal error      71  the disk refused    78  bad configuration

Example:
  sudo pv-install --owner my-org --file-server copyparty --start
  pv-install --root /tmp/stage --dry-run | jq -c 'select(.action!="unchanged")'
  pv-install --verify`,
  options: (y) =>
    y
      .option('root', { type: 'string', default: '/', describe: 'install into this root (staging: no user, no systemctl)' })
      .option('prefix', { type: 'string', default: '/srv/prompt-valet', describe: 'the valet home on the target' })
      .option('source', { type: 'string', default: DEFAULT_SOURCE, defaultDescription: 'the checkout pv-install was built in', describe: 'the built checkout to install from' })
      .option('user', { type: 'string', default: 'prompt-valet', describe: 'the service user (root allowed)' })
      .option('drop-group', { type: 'string', default: DEFAULT_DROP_GROUP, describe: 'the group whose members may drop prompts' })
      .option('operator', { type: 'string', array: true, default: [] as string[], describe: 'add this user to the drop group (repeatable)' })
      .option('check-config', { type: 'boolean', default: false, describe: 'only check the config (exit 78 if bad)' })
      .option('reload-pid', { type: 'number', describe: 'with --check-config: then send SIGHUP to this pv-watcher once it can take it (ExecReload=)' })
      .option('owner', { type: 'string', describe: 'default GitHub owner (watcher.git_default_owner)' })
      .option('host', { type: 'string', describe: 'git host (watcher.git_default_host)' })
      .option('protocol', { choices: ['https', 'ssh', 'git', 'http', 'file'], describe: 'watcher.git_protocol' })
      .option('inbox-mode', { choices: ['legacy_single_owner', 'multi_owner'], describe: 'inbox_mode' })
      .option('file-server', { choices: ['copyparty', 'none'], describe: 'file_server.kind (default: the config\'s, else none)' })
      .option('port', { type: 'number', describe: 'file server port (file_server.port)' })
      .option('web', { type: 'boolean', default: false, describe: 'also install prompt-valet-web.service (pv-web)' })
      .option('role', { choices: ROLES, describe: 'dispatch: nats (docs/scale-out.md): valet (watcher, tree builder, pv-results, a single-host nats-server.conf), worker (pv-worker only) or both' })
      .option('start', { type: 'boolean', default: false, describe: 'start the services (live system only)' })
      .option('install-deps', { type: 'boolean', default: false, describe: 'install missing node/git/codex/gh (live system only)' })
      .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print the plan, write nothing' })
      .option('verify', { type: 'boolean', default: false, describe: 'run the verification checklist on an installed root' })
      .option('uninstall', { type: 'boolean', default: false, describe: 'remove units and scripts; keep all operator data' })
      .check((a) => {
        if (a.verify && a.uninstall) throw new Error('--verify and --uninstall cannot be combined');
        if (a.port !== undefined && (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535)) throw new Error('--port: expected a whole number from 1 to 65535');
        return true;
      }) as never,
  async run(ctx) {
    const a = ctx.args;
    if (a['check-config']) {
      // The same loader the watcher's SIGHUP uses: what passes here, reloads.
      const loaded = ctx.config();
      ctx.log.info(`${loaded.path ?? 'defaults'}: configuration is valid`);
      const pid = a['reload-pid'];
      if (pid === undefined) return EX.OK;
      if (!Number.isInteger(pid) || pid < 2) throw new ToolError('bad_pid', `--reload-pid: expected a process id, got ${pid}`, EX.USAGE);
      const outcome = await sendReload(pid);
      if (outcome === 'sent') return EX.OK;
      throw new ToolError('not_reloaded', outcome === 'gone' ? `pv-watcher ${pid} is gone: nothing to reload` : `pv-watcher ${pid} does not take SIGHUP yet after 10 s: not reloaded`, EX.TEMPFAIL);
    }
    const layout = makeLayout(a.root, a.prefix);
    if (a.verify) {
      let failed = 0;
      for (const c of verifyInstall(layout, ctx.io.env)) {
        ctx.io.stdout.write(JSON.stringify(c) + '\n');
        if (c.ok) ctx.log.info(`pass  ${c.check}: ${c.detail}`);
        else {
          failed++;
          ctx.log.error(`FAIL  ${c.check}: ${c.detail}`);
        }
      }
      return failed === 0 ? EX.OK : 1;
    }
    const r = new Reporter(ctx.io.stdout, ctx.log, a['dry-run']);
    if (a.uninstall) {
      uninstall(r, layout);
      ctx.log.info(`removed ${r.count('removed')} item(s); inbox, processed, finished, repos, config and logs kept`);
      return EX.OK;
    }
    for (const need of ['configs/prompt-valet.yaml', 'units', 'packages']) {
      if (!fs.existsSync(path.join(a.source, need))) {
        throw new ToolError('no_source', `${a.source} is not a Prompt Valet checkout (no ${need}); pass --source`, EX.NOINPUT);
      }
    }
    try {
      await install(r, layout, {
        source: a.source,
        user: a.user,
        dropGroup: a['drop-group'],
        operators: a.operator,
        web: a.web,
        ...(a.role ? { role: a.role } : {}),
        start: a.start,
        installDeps: a['install-deps'],
        env: ctx.io.env,
        choices: {
          ...(a.owner !== undefined ? { owner: a.owner } : {}),
          ...(a.host !== undefined ? { host: a.host } : {}),
          ...(a.protocol !== undefined ? { protocol: a.protocol } : {}),
          ...(a['inbox-mode'] !== undefined ? { inboxMode: a['inbox-mode'] } : {}),
          ...(a['file-server'] !== undefined ? { fileServer: a['file-server'] } : {}),
          ...(a.port !== undefined ? { fileServerPort: a.port } : {}),
          ...(a.web ? { webSocket: WEB_SOCKET } : {}),
        },
      }, ctx.log);
    } catch (err) {
      if (err instanceof DeployError) throw new ToolError('not_built', err.message, EX.NOINPUT);
      if (err instanceof ConfigError || err instanceof ToolError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (e.code && ['EACCES', 'EPERM', 'ENOSPC', 'EROFS', 'EEXIST', 'ENOTDIR'].includes(e.code)) {
        throw new ToolError('os', e.message, EX.OSERR);
      }
      if (e instanceof Error && /exists and is not/.test(e.message)) throw new ToolError('os', e.message, EX.OSERR);
      throw err;
    }
    const changed = r.lines.filter((l) => l.action !== 'unchanged').length;
    ctx.log.info(changed === 0 ? 'nothing to do: everything already in place' : `${changed} change(s)${r.dryRun ? ' planned (dry run: nothing written)' : ''}`);
    return EX.OK;
  },
});
