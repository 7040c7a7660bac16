import { execa } from 'execa';
import * as fs from 'node:fs';
import { AGENT_CGROUP_ENV, ConfigError, defineTool, EX, EXIT_STATUS_HELP, locateTool, prepareAgentCgroups, probeAgentJail, type LoadedConfig } from '@prompt-valet/core';
import { Scheduler } from './scheduler.js';
import { Triggers } from './triggers.js';

interface WatcherArgs {
  once?: boolean;
  'max-parallel'?: number;
}

export const main = defineTool<WatcherArgs>({
  name: 'pv-watcher',
  summary: 'Run the Prompt Valet pipeline for every prompt dropped into the inbox.',
  usage: 'pv-watcher [--once] [--max-parallel N] [--config FILE]',
  options: (y) =>
    y
      .option('once', { type: 'boolean', describe: 'claim what is pending now, run it all, exit' })
      .option('max-parallel', { type: 'number', describe: 'prompts run at once (default: watcher.max_parallel)' }),
  epilogue: `
For each prompt it runs, as separate processes joined by pipes (the same
commands a person can type):

  pv-claim --limit 1 | pv-resolve | pv-clone | pv-run-codex | pv-publish | pv-settle

It holds no job logic of its own. New prompts are picked up from filesystem
notifications, a full rescan every watcher.rescan_interval_seconds, and a
rescan at start, which also recovers claims whose pipeline died
(pv-claim --recover). Up to watcher.max_parallel prompts run at once.

Signals:
  SIGTERM, SIGINT  stop claiming; let runs finish for watcher.shutdown_grace_seconds,
                   then stop their agents (their prompts go back to pending); exit 0.
                   A second signal kills the pipelines at once.
  SIGHUP           reload the configuration (a bad one is refused; the old one stays).

Output: nothing on stdout. One line per state change per run on stderr
(journald): run id, repository, branch, state, reason.

${EXIT_STATUS_HELP}
  A bad configuration at start exits 78: systemd units should set
  RestartPreventExitStatus=78 so they do not restart-loop on it.
  --once exits 0 when every pipeline ran (whatever the prompts' outcomes),
  75 when a pipeline itself failed.

Examples:
  pv-watcher --config /srv/prompt-valet/config/prompt-valet.yaml
  pv-watcher --once && pv-status`,
  async run(ctx) {
    const { log, io } = ctx;
    let loaded: LoadedConfig = ctx.config();
    const maxParallel = () => ctx.args['max-parallel'] ?? loaded.config.watcher.max_parallel;
    if (ctx.args['max-parallel'] !== undefined && (!Number.isInteger(ctx.args['max-parallel']) || ctx.args['max-parallel'] < 1)) {
      log.error('--max-parallel takes a whole number >= 1');
      return EX.USAGE;
    }
    const { config } = loaded;
    // The agent jail (docs/security.md): refuse to start rather than run agents unjailed by accident.
    const jail = probeAgentJail(config.watcher.agent_isolation);
    if (!jail.ok) {
      log.error(jail.message);
      return EX.CONFIG;
    }
    if (jail.warning) log.warn(jail.warning);
    const cgroups = prepareAgentCgroups();
    if ('runs' in cgroups) io.env[AGENT_CGROUP_ENV] = cgroups.runs;
    // On cgroup v1 pv-run-codex looks for a writable hierarchy itself; each run records what it got.
    else if (cgroups.cgroupV2) log.warn(`agent runs get no cgroup of their own (${cgroups.reason}); only the jail's rlimits apply`);
    fs.mkdirSync(config.inbox, { recursive: true });

    // Recover claims whose pipeline died (crash, kill -9, reboot).
    const claimBin = locateTool('pv-claim', { env: io.env });
    const cfgArgs = loaded.path ? ['--config', loaded.path] : [];
    const recovered = await execa(claimBin, ['--recover', ...cfgArgs], { env: io.env, reject: false, stdin: 'ignore', stderr: 'inherit' });
    if (recovered.exitCode !== 0) {
      log.error(`pv-claim --recover failed (exit ${recovered.exitCode ?? recovered.signal})`);
      return recovered.exitCode === EX.CONFIG ? EX.CONFIG : EX.TEMPFAIL;
    }
    const nRecovered = String(recovered.stdout).split('\n').filter((l) => l.trim()).length;
    if (nRecovered > 0) log.notice(`recovered ${nRecovered} claim(s) whose pipeline had died`);

    const scheduler = new Scheduler({ configPath: loaded.path, maxParallel: maxParallel(), env: io.env, log, once: Boolean(ctx.args.once) });

    if (ctx.args.once) {
      scheduler.trigger();
      await scheduler.idle();
      return scheduler.failures > 0 ? EX.TEMPFAIL : EX.OK;
    }

    const triggers = new Triggers({
      inbox: config.inbox,
      rescanMs: config.watcher.rescan_interval_seconds * 1000,
      settleMs: config.watcher.settle_seconds * 1000,
      log,
      onTrigger: () => scheduler.trigger(),
    });
    triggers.start();
    log.notice(`watching ${config.inbox} (max_parallel ${maxParallel()}, config ${loaded.path ?? 'defaults'})`);
    scheduler.trigger(); // the rescan at start

    return await new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          log.warn(`${signal} again: killing running pipelines now`);
          scheduler.killAll();
          return;
        }
        stopping = true;
        log.notice(`${signal}: stopping`);
        triggers.stop();
        const w = loaded.config.watcher;
        void scheduler
          .shutdown(w.shutdown_grace_seconds * 1000, (w.runner_kill_grace_seconds + 15) * 1000)
          .then(async () => {
            // Anything killed mid-step is put back to pending now rather than at the next start.
            await execa(claimBin, ['--recover', ...(loaded.path ? ['--config', loaded.path] : [])], {
              env: io.env,
              reject: false,
              stdin: 'ignore',
              stdout: 'ignore',
              stderr: 'inherit',
            });
            process.off('SIGTERM', onTerm);
            process.off('SIGINT', onInt);
            process.off('SIGHUP', onHup);
            log.notice('stopped');
            resolve(EX.OK);
          });
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      const onHup = () => {
        try {
          const next = ctx.config();
          loaded = next;
          scheduler.setConfigPath(next.path);
          scheduler.setMaxParallel(maxParallel());
          triggers.update(next.config.watcher.rescan_interval_seconds * 1000, next.config.watcher.settle_seconds * 1000);
          if (next.config.inbox !== config.inbox) log.warn('inbox changed: restart pv-watcher to watch the new folder');
          log.notice(`configuration reloaded (max_parallel ${maxParallel()})`);
          scheduler.trigger();
        } catch (err) {
          const msg = err instanceof ConfigError ? err.message : String(err);
          log.error(`SIGHUP: configuration not reloaded, keeping the old one: ${msg}`);
        }
      };
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      process.on('SIGHUP', onHup);
    });
  },
});
