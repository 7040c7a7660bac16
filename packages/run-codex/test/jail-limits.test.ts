import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno, findCgroupBackend } from '@prompt-valet/core';
import { jailedValet } from './fixtures/jailed-valet.js';
import { processIsDead, waitFor } from './fixtures/scratch.js';

/**
 * The jail's lifetime and limits: no agent process outlives pv-run-codex,
 * and a fork bomb or a memory hog trips its own run's limit (resource_limit)
 * while another run and the valet itself carry on.
 */
async function agentScript(dir: string, name: string, body: string): Promise<string> {
  const file = path.join(dir, 'bin', name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** pids whose command line is exactly `argv` (NUL-separated in /proc). */
function pidsRunning(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') === want && !processIsDead(pid);
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ESRCH');
      return false;
    }
  });
}

t.test('SIGKILL of pv-run-codex kills every process of the jail, background children included', async (t) => {
  const v = await jailedValet(t);
  const tag = String(3000 + Math.floor(Math.random() * 999));
  const runner = await agentScript(v.root, 'lingering-agent', [
    `sleep ${tag}1 &`,
    `setsid sleep ${tag}2 &`,
    `(trap '' TERM HUP; sleep ${tag}3) &`,
    'echo started > started.txt',
    'wait',
  ].join('\n'));
  await v.writeConfig({ runner_cmd: runner });
  const running = v.start();
  await waitFor('the agent to start its children', () => fs.existsSync(path.join(v.checkout, 'started.txt')));
  // `&` forks before the child execs sleep: wait until all three are sleeping (bounded), then count.
  const sleeping = () => [1, 2, 3].flatMap((n) => pidsRunning(['sleep', `${tag}${n}`]));
  await waitFor('the three children to be sleeping', () => sleeping().length === 3, 10_000).catch(() => undefined);
  const children = sleeping();
  t.equal(children.length, 3, 'three background children run');
  running.child.kill('SIGKILL');
  await running.done;
  await waitFor('every process of the jail to be gone', () => children.every(processIsDead), 10_000);
  t.ok(children.every(processIsDead), 'none outlived pv-run-codex');
});

const backend = findCgroupBackend(process.env);
t.test('a fork bomb trips its own run\'s process limit; a run beside it and the valet carry on', { skip: backend ? false : 'no writable cgroup here (needs a delegated cgroup v2 or a writable v1 pids hierarchy)' }, async (t) => {
  const bombValet = await jailedValet(t);
  const calmValet = await jailedValet(t);
  const bomb = await agentScript(bombValet.root, 'fork-bomb', 'i=0; while [ $i -lt 400 ]; do sleep 20 & i=$((i+1)); done; wait');
  const calm = await agentScript(calmValet.root, 'calm-agent', 'sleep 2; echo fine > fine.txt');
  await bombValet.writeConfig({ runner_cmd: bomb, agent_max_processes: 32 });
  await calmValet.writeConfig({ runner_cmd: calm, agent_max_processes: 32 });
  const started = Date.now();
  const [bombRun, calmRun] = [bombValet.start(), calmValet.start()];
  // The valet (this process) can still start processes while the bomb runs.
  execFileSync('true');
  const [b, c] = await Promise.all([bombRun.done, calmRun.done]);
  t.equal(b.records[0]!.error?.code, 'resource_limit', b.stderr);
  t.match(b.records[0]!.error?.message ?? '', /32 processes/);
  t.same(b.records[0]!.agent?.limits_tripped, ['processes']);
  t.equal(b.records[0]!.agent?.limits?.pids_max, 32, 'the run records which limits applied');
  t.ok(Date.now() - started < 30_000, 'the bomb is stopped when it trips, not at the time limit');
  t.notOk(c.records[0]!.error, JSON.stringify(c.records[0]!.error));
  t.equal(fs.readFileSync(path.join(calmValet.checkout, 'fine.txt'), 'utf8'), 'fine\n', 'the other run finished its work');
});

t.test('a memory hog trips its own run\'s memory limit', { skip: backend && (backend.kind === 'v2' || backend.memoryRuns) ? false : 'no writable memory cgroup here' }, async (t) => {
  const v = await jailedValet(t);
  const hog = await agentScript(v.root, 'memory-hog', `${process.execPath} -e 'const keep = []; for (;;) keep.push(Buffer.alloc(16e6, 1))'`);
  await v.writeConfig({ runner_cmd: hog, agent_max_memory_bytes: 128 * 1024 * 1024 });
  const run = await v.start().done;
  t.equal(run.records[0]!.error?.code, 'resource_limit', run.stderr);
  t.ok(run.records[0]!.agent?.limits_tripped?.includes('memory'));
});

const MiB = 1024 * 1024;
t.test('a file cut at the file size limit settles the run as resource_limit, though the agent carries on and exits 0', async (t) => {
  const v = await jailedValet(t);
  // As codex does: a command of the agent dies of SIGXFSZ, the agent itself goes on and ends well.
  const runner = await agentScript(v.root, 'big-writer', [
    `head -c ${2 * MiB} /dev/zero > big.bin`,
    'echo "writer: $?" > after.txt',
    'exit 0',
  ].join('\n'));
  await v.writeConfig({ runner_cmd: runner, agent_max_file_bytes: MiB });
  const run = await v.start().done;
  const rec = run.records[0]!;
  t.equal(rec.error?.code, 'resource_limit', run.stderr);
  t.same(rec.agent?.limits_tripped, ['file_size']);
  t.match(rec.error?.message ?? '', `limit of ${MiB} bytes per file`);
  t.match(rec.error?.message ?? '', /cut at that size, left in the checkout: big\.bin/, 'the message names the cut file');
  t.equal(rec.error?.retryable, false);
  t.equal(fs.statSync(path.join(v.checkout, 'big.bin')).size, MiB, 'the file was cut at the limit and is left where the agent wrote it');
  t.match(fs.readFileSync(path.join(v.checkout, 'after.txt'), 'utf8'), /^writer: 153$/m, 'the writer died of SIGXFSZ (128 + 25) and the agent went on');
});

t.test('files under the limit, one the agent cut and removed, and a big file from before the run do not trip it', async (t) => {
  const v = await jailedValet(t);
  // The repository may hold a file as big as the limit: written before the agent started, it is not the run's.
  fs.writeFileSync(path.join(v.checkout, 'old-big.bin'), Buffer.alloc(MiB));
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(v.checkout, 'old-big.bin'), past, past);
  const runner = await agentScript(v.root, 'careful-writer', [
    `head -c ${MiB - 1} /dev/zero > almost.bin`,
    `head -c ${2 * MiB} /dev/zero > /tmp/scratch.bin; head -c ${2 * MiB} /dev/zero > gone.bin; rm gone.bin`,
    'echo fine > fine.txt',
  ].join('\n'));
  await v.writeConfig({ runner_cmd: runner, agent_max_file_bytes: MiB });
  const run = await v.start().done;
  const rec = run.records[0]!;
  t.notOk(rec.error, JSON.stringify(rec.error));
  t.notOk(rec.agent?.limits_tripped, 'no limit tripped');
  t.equal(fs.statSync(path.join(v.checkout, 'almost.bin')).size, MiB - 1);
});

const NOBODY = 65534;
t.test('as an unprivileged service user: the jail works, and RLIMIT_NPROC bounds the jail alone', { skip: process.getuid?.() === 0 ? false : 'needs root to switch to an unprivileged user' }, async (t) => {
  const v = await jailedValet(t);
  const runner = await agentScript(v.root, 'nproc-probe', [
    'echo "procs $(ls /proc | grep -c \'^[0-9]\')" > report.txt',
    `echo "config $(ls -A ${v.root}/config | wc -l)" >> report.txt`,
    'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done 2>/dev/null',
    'echo forked-all >> report.txt',
  ].join('\n'));
  await v.writeConfig({ runner_cmd: runner, agent_max_processes: 32 });
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, v.root]);
  const started = Date.now();
  // The valet user itself starts processes while the jail is at its limit.
  const run = v.start({ uid: NOBODY, gid: NOBODY, env: { ...v.env, HOME: '/nonexistent' } });
  const { records, stderr } = await run.done;
  const agent = records[0]!.agent!;
  t.equal(agent.limits?.isolation, 'bwrap', stderr);
  t.equal(agent.limits?.rlimit_nproc, 32, 'the run records the rlimit');
  const report = fs.readFileSync(path.join(v.checkout, 'report.txt'), 'utf8');
  t.ok(Number(/procs (\d+)/.exec(report)?.[1]) <= 6, `a fresh /proc (${report.trim()})`);
  t.match(report, /^config 0$/m, 'config/ is empty inside');
  t.notMatch(report, /forked-all/, 'the 100 forks stopped at 32 processes');
  t.ok(Date.now() - started < 60_000);
});
