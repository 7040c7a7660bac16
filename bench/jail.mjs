// The agent jail's start-up cost per run: the same launch pv-run-codex makes
// (planAgentLaunch: cgroup entry, bwrap with every hidden folder and bind,
// prlimit), running `true` instead of codex, against `prlimit … true`
// without the jail. The difference is what each run pays for the jail.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, loadAvg, repeatTimed, timeProcess } from './lib.mjs';

export async function jail({ runs }) {
  const { loadConfig } = await import(path.join(REPO, 'packages/core/dist/index.js'));
  const { planAgentLaunch, hostJailDirs, makeHostJailDirs } = await import(path.join(REPO, 'packages/run-codex/dist/jail.js'));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-bench-jail-'));
  try {
    for (const d of ['config', 'inbox', 'finished', 'repos/o/widget', 'processed/20260101-000000-000-bench000']) fs.mkdirSync(path.join(root, d), { recursive: true });
    const checkout = path.join(root, 'repos/o/widget');
    execFileSync('git', ['init', '-q', checkout]);
    const runRoot = path.join(root, 'processed/20260101-000000-000-bench000');
    fs.writeFileSync(path.join(runRoot, 'prompt.md'), 'x\n');
    const configPath = path.join(root, 'config/prompt-valet.yaml');
    fs.writeFileSync(configPath, JSON.stringify({ inbox: `${root}/inbox`, processed: `${root}/processed`, finished: `${root}/finished`, repos_root: `${root}/repos` }));
    const { config } = loadConfig({ path: configPath });
    const dirs = hostJailDirs(runRoot);
    makeHostJailDirs(dirs);
    const inputs = { config, configPath, env: process.env, checkoutDir: checkout, sharedGitDir: path.join(checkout, '.git'), promptFile: path.join(runRoot, 'prompt.md'), dirs };
    const launch = (isolation) => {
      const plan = planAgentLaunch({ ...inputs, config: { ...config, watcher: { ...config.watcher, agent_isolation: isolation } } }, '/bin/true', [], '20260101-000000-000-bench000');
      return plan;
    };
    const measure = (isolation) =>
      repeatTimed(runs, async () => {
        const plan = launch(isolation);
        try {
          return await timeProcess(plan.command, plan.args, { env: process.env });
        } finally {
          await plan.cgroup?.remove();
        }
      });
    const load_before = loadAvg();
    const unjailed = await measure('none');
    const jailed = await measure('bwrap');
    const sample = launch('bwrap');
    await sample.cgroup?.remove();
    return {
      runs,
      unjailed,
      jailed,
      cost_ms_p50: +(jailed.wall_ms.p50 - unjailed.wall_ms.p50).toFixed(1),
      cgroup: sample.applied.cgroup,
      bwrap_args: sample.args.length,
      load_avg: [load_before, loadAvg()],
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 50);
  process.stdout.write(JSON.stringify(await jail({ runs }), null, 2) + '\n');
}
