import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import {
  AGENT_CGROUP_ENV,
  claimLockPath,
  ConfigError,
  defineTool,
  envWithConfigHandoff,
  EX,
  EXIT_STATUS_HELP,
  listClaimRecords,
  locateTool,
  prepareAgentCgroups,
  probeAgentJail,
  PREPARE_AHEAD_AS_MAX_PARALLEL,
  type LoadedConfig,
} from '@prompt-valet/core';
import { Pipeline, pipelineCommand, type PipelineLike } from './pipeline.js';
import { Notifier } from './notifier.js';
import { Recovery } from './recovery.js';
import { Scheduler } from './scheduler.js';
import { earlySignals, type WatcherSignal } from './signals.js';
import { inboxHasWork, Triggers } from './triggers.js';

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
      .option('max-parallel', { type: 'number', describe: 'agents run at once (default: watcher.max_parallel)' }),
  epilogue: `
For each prompt it runs, as separate processes joined by pipes (the same
commands a person can type):

  pv-claim --limit 1 | pv-resolve | pv-clone | pv-run-codex | pv-publish | pv-settle

It holds no job logic of its own. Each pipeline holds a claim lock of its
own (processed/.ledger/locks/<id>.lock, locked and inherited by every step
as fd 9, PV_CLAIM_LOCK=<id>): the claim lives exactly as long as the
pipeline. New prompts are picked up from filesystem notifications, a full
rescan every watcher.rescan_interval_seconds, and a rescan at start.
Claims whose pipeline died (their lock is free) are recovered and resumed
(pv-claim --recover) at start, at stop, after a pipeline of its own ended
without settling, and at each rescan while claims of other holders exist.

Agent slots: up to watcher.max_parallel agents run at once. Up to
watcher.prepare_ahead more pipelines (default: as many as max_parallel; 0:
none) claim, resolve and clone meanwhile, then wait at the agent gate (fd 4
of pv-run-codex, PV_AGENT_GATE_FD) until a slot is free, granted in the order
they asked; publishing and settling after the agent hold no slot. So the next
agent starts the moment one ends. (dispatch: nats: up to max_parallel
pipelines, none ahead: the agents run on the workers.)

With notify.webhooks set, every settled record also goes to one long-lived
pv-notify fed by the watcher (the same as \`… | pv-settle | pv-notify\`), so
a slow webhook never holds a pipeline open.

Signals (caught from the first moment; one arriving during start is handled
once started):
  SIGTERM, SIGINT  stop claiming; runs waiting for an agent slot go back to pending
                   at once (not counted); let running agents finish for
                   watcher.shutdown_grace_seconds, then stop them (their prompts go
                   back to pending); exit 0.
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
    // Installed by the bin before anything loaded; signals so far are queued.
    const signals = earlySignals;
    const { log, io } = ctx;
    let loaded: LoadedConfig = ctx.config();
    const maxParallel = () => ctx.args['max-parallel'] ?? loaded.config.watcher.max_parallel;
    // dispatch: nats: no pv-run-codex here, so no gate: each pipeline waits on a worker's run, and
    // max_parallel keeps bounding those (pipelines ahead would only put more jobs in flight).
    const prepareAhead = () => {
      const w = loaded.config.watcher;
      if (loaded.config.dispatch === 'nats') return 0;
      return w.prepare_ahead === PREPARE_AHEAD_AS_MAX_PARALLEL ? maxParallel() : w.prepare_ahead;
    };
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
    const processed = config.processed;

    const claimBin = locateTool('pv-claim', { env: io.env });
    // (a handoff made stale by an edited config is ignored by the receiver: core config.ts)
    // Every tool this watcher starts gets the config it parsed (core CONFIG_HANDOFF_ENV): six YAML parses fewer per run.
    let stepEnv = envWithConfigHandoff(io.env, loaded);
    const recovery = new Recovery(claimBin, () => (loaded.path ? ['--config', loaded.path] : []), () => stepEnv, log);
    const atStart = await recovery.run('start');
    if (atStart !== 0) return atStart === EX.CONFIG ? EX.CONFIG : EX.TEMPFAIL;

    // pv-notify, fed with every settled record, when webhooks are configured.
    let notifier: Notifier | undefined;
    const notifierFor = (l: LoadedConfig) =>
      l.config.notify.webhooks.length === 0
        ? undefined
        : new Notifier({
            bin: locateTool('pv-notify', { env: io.env }),
            configArgs: l.path ? ['--config', l.path] : [],
            env: envWithConfigHandoff(io.env, l),
            log,
            closeTimeoutMs: (l.config.notify.drain_seconds + 5) * 1000,
          });
    notifier = notifierFor(loaded);


    const endings = new Set<Promise<void>>();
    const ended = async (p: PipelineLike, how: { claimed: boolean; settled: boolean }) => {
      const named = (await listClaimRecords(processed)).some((r) => r.record.liveness?.kind === 'local' && r.record.liveness.lock === p.lockId);
      // Its claim stands (died before settling): recovery takes the lock, then removes the file.
      if (named || (how.claimed && !how.settled)) recovery.request(`a pipeline ended without settling`);
      else await fsp.rm(claimLockPath(processed, p.lockId), { force: true });
    };
    const scheduler = new Scheduler({
      factory: (handlers) => {
        const command = pipelineCommand({ configPath: loaded.path, env: io.env, dispatch: loaded.config.dispatch });
        log.debug(`starting: ${command}`);
        return new Pipeline(command, stepEnv, processed, handlers);
      },
      maxParallel: maxParallel(),
      prepareAhead: prepareAhead(),
      log,
      once: Boolean(ctx.args.once),
      onSettledRecord: (rec) => {
        if (rec.settle) notifier?.send(rec);
      },
      inboxHasWork: () => inboxHasWork(config.inbox, loaded.config.watcher.quiet_seconds * 1000, log),
      onEnded: (p, how) => {
        const done = ended(p, how).catch((err: unknown) => log.error(`after pipeline ${p.lockId}: ${(err as Error).message}`));
        endings.add(done);
        void done.finally(() => endings.delete(done));
      },
    });
    recovery.onRecovered = () => scheduler.trigger();
    /** Pipelines' ends still being looked at; then any recovery they asked for. */
    const settledDown = async () => {
      while (endings.size > 0) await Promise.all([...endings]);
      await recovery.idle();
      await notifier?.close();
    };

    /** At a rescan: claims held by locks that are not ours may belong to a dead pipeline. */
    const recoverForeign = async () => {
      const mine = scheduler.lockIds();
      const records = await listClaimRecords(processed);
      if (records.some((r) => r.record.liveness?.kind !== 'dispatched' && !(r.record.liveness?.kind === 'local' && mine.has(r.record.liveness.lock)))) {
        recovery.request('rescan');
      }
    };

    const triggers = ctx.args.once
      ? undefined
      : new Triggers({
          inbox: config.inbox,
          rescanMs: config.watcher.rescan_interval_seconds * 1000,
          settleMs: config.watcher.quiet_seconds * 1000,
          log,
          onTrigger: (_why, rel) => scheduler.trigger(rel),
          onRescan: () => void recoverForeign().catch((err: unknown) => log.error(`rescan: ${(err as Error).message}`)),
        });

    const reload = () => {
      try {
        const next = ctx.config();
        loaded = next;
        stepEnv = envWithConfigHandoff(io.env, next);
        // The old pv-notify sends what it has; the next settled run starts one with the new webhooks.
        void notifier?.close();
        notifier = notifierFor(next);
        scheduler.configChanged();
        scheduler.setMaxParallel(maxParallel(), prepareAhead());
        triggers?.update(next.config.watcher.rescan_interval_seconds * 1000, next.config.watcher.quiet_seconds * 1000);
        if (next.config.inbox !== config.inbox) log.warn('inbox changed: restart pv-watcher to watch the new folder');
        log.notice(`configuration reloaded (max_parallel ${maxParallel()}, prepare_ahead ${prepareAhead()})`);
        scheduler.trigger();
      } catch (err) {
        const msg = err instanceof ConfigError ? err.message : String(err);
        log.error(`SIGHUP: configuration not reloaded, keeping the old one: ${msg}`);
      }
    };

    return await new Promise<number>((resolve) => {
      let stopping = false;
      const finish = (code: number) => {
        signals.uninstall();
        resolve(code);
      };
      const stop = (signal: WatcherSignal) => {
        if (stopping) {
          log.warn(`${signal} again: killing running pipelines now`);
          scheduler.killAll();
          return;
        }
        stopping = true;
        log.notice(`${signal}: stopping`);
        triggers?.stop();
        const w = loaded.config.watcher;
        void scheduler
          .shutdown(w.shutdown_grace_seconds * 1000, (w.runner_kill_grace_seconds + 15) * 1000)
          .then(settledDown)
          // Anything killed mid-step is put back to pending now rather than at the next start.
          .then(() => recovery.run('stop'))
          .then(() => {
            log.notice('stopped');
            finish(EX.OK);
          });
      };
      signals.attach((s) => (s === 'SIGHUP' ? (stopping ? undefined : reload()) : stop(s)));
      if (stopping) return;

      if (ctx.args.once) {
        scheduler.trigger();
        void scheduler
          .idle()
          .then(settledDown)
          .then(() => {
            if (!stopping) finish(scheduler.failures > 0 ? EX.TEMPFAIL : EX.OK);
          });
        return;
      }
      triggers!.start();
      log.notice(`watching ${config.inbox} (max_parallel ${maxParallel()}, prepare_ahead ${prepareAhead()}, config ${loaded.path ?? 'defaults'})`);
      scheduler.trigger(); // the rescan at start
    });
  },
});
