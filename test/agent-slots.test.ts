// Agent slots (docs/lifecycle.md): watcher.max_parallel bounds the agents
// running at once, while up to watcher.prepare_ahead more pipelines claim,
// resolve and clone ahead and wait at the agent gate. Real pv-* tools under
// the real pv-watcher; the agent is a jailed shell stand-in that records
// when it ran (test/fixtures/timed-agent.sh).
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRunStatus, type RunStatus } from '@prompt-valet/core';
import {
  binPath,
  cloneInto,
  makeOrigin,
  makeValetRoot,
  startTrackedProcess,
  valetProcesses,
  waitFor,
  type ConfigOverrides,
  type TrackedProcess,
  type ValetRoot,
} from '@prompt-valet/testkit';

// Real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(600_000);

const TIMED_AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'timed-agent.sh');

interface Run {
  id: string;
  status: RunStatus;
  /** when the agent (each try of it) started and ended, ms since the epoch */
  spans: { start: number; end: number | undefined }[];
  /** what the agent found at its descriptor 4 */
  fd4: string[];
  /** when pv-clone finished (the first `cloned` in the history) */
  clonedAt: number | undefined;
}

interface SlotValet {
  root: ValetRoot;
  env: NodeJS.ProcessEnv;
  startWatcher(args?: string[]): TrackedProcess;
  drop(name: string, opts?: { agentSeconds?: number; firstTrySeconds?: number; repo?: string }): Promise<void>;
  runs(): Promise<Run[]>;
  finished(): string[];
  inbox(repo?: string): string[];
}

async function slotValet(t: Test, watcher: ConfigOverrides): Promise<SlotValet> {
  const repos = ['alpha', 'beta'];
  const root = await makeValetRoot({
    watcher: {
      runner_cmd: TIMED_AGENT,
      runner_model: 'test-model',
      runner_timeout_seconds: 120,
      publisher: 'none',
      rescan_interval_seconds: 2,
      retry_backoff_seconds: 0,
      shutdown_grace_seconds: 20,
      runner_kill_grace_seconds: 2,
      ...watcher,
    },
  }, 'pv-slots-');
  t.teardown(() => root.cleanup());
  for (const repo of repos) {
    const bare = await makeOrigin(path.join(root.root, 'origins', 'acme', `${repo}.git`), { branches: ['main'], files: { 'README.md': `# ${repo}\n` } });
    await cloneInto(`file://${bare}`, path.join(root.repos, 'acme', repo));
    await fsp.mkdir(path.join(root.inbox, repo, 'main'), { recursive: true });
  }
  const env: NodeJS.ProcessEnv = { ...process.env, PV_CONFIG: root.configPath, NO_COLOR: '1' };
  const finishedDir = (dir: string): string[] =>
    fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(done|error)\.md$/.test(f)).sort() : [];
  return {
    root,
    env,
    startWatcher(args = []) {
      const w = startTrackedProcess(process.execPath, [binPath('pv-watcher'), '--verbose', ...args], env, { keepStdout: false });
      t.teardown(() => w.stop('SIGKILL'));
      return w;
    },
    async drop(name, opts = {}) {
      const lines = [`# ${name}`, '', 'Write a file.', `agent-seconds: ${opts.agentSeconds ?? 1}`];
      if (opts.firstTrySeconds !== undefined) lines.push(`first-try-seconds: ${opts.firstTrySeconds}`);
      await root.dropPrompt(`${opts.repo ?? 'alpha'}/main/${name}.prompt.md`, `${lines.join('\n')}\n`);
    },
    async runs() {
      const ids = fs.readdirSync(root.processed).filter((d) => !d.startsWith('.')).sort();
      const out: Run[] = [];
      for (const id of ids) {
        const status = await readRunStatus(path.join(root.processed, id));
        if (!status) continue;
        const spanFile = path.join(root.processed, id, 'jail', 'home', 'agent-span.txt');
        const lines = fs.existsSync(spanFile) ? fs.readFileSync(spanFile, 'utf8').trim().split('\n') : [];
        const spans: Run['spans'] = [];
        const fd4: string[] = [];
        for (const line of lines) {
          const [what, value] = line.split(' ') as [string, string];
          if (what === 'start') spans.push({ start: Number(value), end: undefined });
          else if (what === 'end') spans[spans.length - 1]!.end = Number(value);
          else if (what === 'fd4') fd4.push(value);
        }
        const cloned = status.history.find((h) => h.state === 'cloned');
        out.push({ id, status, spans, fd4, clonedAt: cloned ? Date.parse(cloned.at) : undefined });
      }
      return out;
    },
    finished: () => finishedDir(root.finished),
    inbox: (repo = 'alpha') => fs.readdirSync(path.join(root.inbox, repo, 'main')).filter((f) => !f.startsWith('.')).sort(),
  };
}

/** The most agents that ran at one moment; an agent that never wrote its end (killed) ran until `unendedUntil`. */
function mostAtOnce(runs: Run[], unendedUntil = Infinity): number {
  const edges = runs.flatMap((r) => r.spans.flatMap((s) => [[s.start, 1], [s.end ?? unendedUntil, -1]] as const));
  // An end and a start at the same millisecond: the end first (the slot was handed on).
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}

/** pv-run-codex processes of this valet (the shell hands PV_AGENT_GATE_FD to it alone) that have started an agent. */
function runCodexWithAgent(configPath: string): number[] {
  const gated = valetProcesses(configPath, (e) => e.startsWith('PV_AGENT_GATE_FD='));
  const parents = new Set<number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.add(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      continue; // exited meanwhile
    }
  }
  return gated.filter((pid) => parents.has(pid));
}

/**
 * Every process holding the agent gate of a pv-run-codex now running (the
 * socket its fd 4 is), with its command line: only that pv-run-codex and
 * the shells around the steps may.
 */
function gateHolders(configPath: string): { pid: number; cmdline: string }[] {
  const gates = new Set<string>();
  for (const pid of valetProcesses(configPath, (e) => e.startsWith('PV_AGENT_GATE_FD='))) {
    try {
      gates.add(fs.readlinkSync(`/proc/${pid}/fd/4`));
    } catch {
      continue; // exited meanwhile
    }
  }
  const holders: { pid: number; cmdline: string }[] = [];
  for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const links = fs.readdirSync(`/proc/${entry}/fd`).map((fd) => fs.readlinkSync(`/proc/${entry}/fd/${fd}`));
      if (links.some((l) => gates.has(l))) holders.push({ pid: Number(entry), cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
  }
  return holders;
}

t.test('max_parallel 1, prepare_ahead 1: one agent at a time, the next run cloned while the previous agent runs, all done', async (t) => {
  const v = await slotValet(t, { max_parallel: 1, prepare_ahead: 1 });
  // The run ahead starts once the slot is taken (Scheduler.pipelineCap): each agent runs long enough
  // for the next run's claim, resolve and clone to finish beside it on a busy machine.
  for (let i = 0; i < 4; i++) await v.drop(`task-${i}`, { repo: i % 2 === 0 ? 'alpha' : 'beta', agentSeconds: 3 });
  const w = v.startWatcher();
  await waitFor('an agent running and the next run cloned', async () => {
    const runs = await v.runs();
    return runs.some((r) => r.spans.length === 1 && r.spans[0]!.end === undefined) && runs.filter((r) => r.clonedAt !== undefined).length >= 2;
  }, 120_000, 50);
  const holders = gateHolders(v.root.configPath);
  t.ok(holders.some((h) => /pv-run-codex/.test(h.cmdline)), 'pv-run-codex holds its gate');
  t.same(holders.filter((h) => !/pv-run-codex/.test(h.cmdline) && !/^(\/bin\/)?sh( |$)/.test(h.cmdline)), [],
    'no other step, and no agent, holds a gate: only pv-run-codex and the shells around the steps');
  await waitFor('4 prompts settled', () => v.finished().length >= 4, 180_000, 200);
  t.equal(await w.stop(), 0);
  t.same(v.finished(), ['alpha/main/task-0.done.md', 'alpha/main/task-2.done.md', 'beta/main/task-1.done.md', 'beta/main/task-3.done.md']);

  const runs = await v.runs();
  t.equal(runs.length, 4);
  t.ok(runs.every((r) => r.spans.length === 1 && r.spans[0]!.end !== undefined), 'each agent ran once, to its end');
  t.equal(mostAtOnce(runs), 1, 'agents never overlapped');
  const byStart = [...runs].sort((a, b) => a.spans[0]!.start - b.spans[0]!.start);
  const ahead = byStart.slice(1).filter((r, i) => r.clonedAt !== undefined && r.clonedAt < byStart[i]!.spans[0]!.end!);
  t.ok(ahead.length > 0, `a run was cloned while the agent before it ran (${ahead.length} of 3)`);
  // The next agent starts the moment one ends: only pv-run-codex's exit of the jail and a line on the gate between them.
  const gaps = byStart.slice(1).map((r, i) => r.spans[0]!.start - byStart[i]!.spans[0]!.end!);
  t.ok(gaps.some((g) => g < 1000), `a prepared run's agent followed the previous one within a second (gaps ${gaps.join(', ')} ms)`);
  t.ok(runs.every((r) => r.fd4.every((f) => f === '/dev/null' || f === 'closed')), `the agents never saw the gate (fd 4: ${[...new Set(runs.flatMap((r) => r.fd4))].join(', ')})`);
  t.match(w.stderr(), /run \S+ waiting for an agent slot \(1 of 1 in use, 1 waiting\)/, 'a run that has to wait says so');
  t.match(w.stderr(), /gets an agent slot/, 'and when it gets one (debug)');
});

t.test('max_parallel 2: never 3 agents at once', async (t) => {
  const v = await slotValet(t, { max_parallel: 2 });
  for (let i = 0; i < 6; i++) await v.drop(`task-${i}`, { repo: i % 2 === 0 ? 'alpha' : 'beta' });
  const w = v.startWatcher();
  await waitFor('6 prompts settled', () => v.finished().length >= 6, 240_000, 200);
  t.equal(await w.stop(), 0);
  t.ok(v.finished().every((f) => f.endsWith('.done.md')), 'all done');
  const runs = await v.runs();
  t.equal(runs.length, 6);
  t.equal(mostAtOnce(runs), 2, 'two agents ran together, never three');
});

t.test('a pv-run-codex holding the slot killed (SIGKILL): the waiting run gets the slot, the killed run is recovered and resumed', async (t) => {
  const v = await slotValet(t, { max_parallel: 1, prepare_ahead: 1 });
  await v.drop('slow', { agentSeconds: 1, firstTrySeconds: 60 });
  const w = v.startWatcher();
  const slow = await waitFor('the slow agent running', async () => (await v.runs()).find((r) => r.spans.length === 1), 120_000, 100);
  await v.drop('next', { repo: 'beta' });
  await waitFor('the next run cloned and waiting at the gate', async () => (await v.runs()).some((r) => r.id !== slow.id && r.clonedAt !== undefined), 120_000, 100);
  const holders = runCodexWithAgent(v.root.configPath);
  t.equal(holders.length, 1, 'one pv-run-codex has an agent: the slot holder');
  const killedAt = Date.now();
  process.kill(holders[0]!, 'SIGKILL');

  await waitFor('both settled', () => v.finished().length >= 2, 180_000, 200);
  t.equal(await w.stop(), 0);
  t.same(v.finished(), ['alpha/main/slow.done.md', 'beta/main/next.done.md']);
  const runs = await v.runs();
  const next = runs.find((r) => r.id !== slow.id)!;
  t.ok(next.spans[0]!.start - killedAt < 30_000, `the waiting run's agent started once the killed one's slot was free (${next.spans[0]!.start - killedAt} ms after the kill), not after its 60 s`);
  const resumed = runs.find((r) => r.id === slow.id)!;
  t.equal(resumed.spans.length, 2, 'the killed run was resumed and its agent ran again');
  t.match(resumed.status, { state: 'done', attempt: 2, resumed: 1 }, 'recovered under its run id, the kill counted as a try');
  t.match(w.stderr(), /recovered 1 claim/);
  t.equal(mostAtOnce(runs, killedAt), 1, 'never two agents at once, the kill included');
});

t.test('SIGTERM while runs wait at the gate: they go back to pending at once, not counted, without starting an agent; nothing is lost', async (t) => {
  const v = await slotValet(t, { max_parallel: 1, prepare_ahead: 2 });
  await v.drop('first', { agentSeconds: 6 });
  const w = v.startWatcher();
  const first = await waitFor('the first agent running', async () => (await v.runs()).find((r) => r.spans.length === 1), 120_000, 100);
  await v.drop('second');
  await v.drop('third', { repo: 'beta' });
  await waitFor('two runs cloned and waiting at the gate', async () => (await v.runs()).filter((r) => r.id !== first.id && r.clonedAt !== undefined).length === 2, 120_000, 100);
  const stoppedAt = Date.now();
  const code = await w.stop('SIGTERM', 120_000);
  t.equal(code, 0, 'a graceful stop');
  t.same(v.finished(), ['alpha/main/first.done.md'], 'the running agent finished within the grace period');
  t.same(v.inbox('alpha'), ['second.prompt.md'], 'the waiting runs are pending again');
  t.same(v.inbox('beta'), ['third.prompt.md']);
  const runs = await v.runs();
  const waited = runs.filter((r) => r.id !== first.id);
  t.equal(waited.length, 2);
  for (const r of waited) {
    t.same(r.spans, [], `${r.id}: no agent started`);
    t.match(r.status, { state: 'retry', error: { code: 'aborted_shutdown' } }, `${r.id}: stopped as a shutdown`);
    const back = Date.parse(r.status.updated_at);
    t.ok(back < first.spans[0]!.start + 6000 && back - stoppedAt < 5000, `${r.id}: sent back at once, not after the running agent (${back - stoppedAt} ms after SIGTERM)`);
  }
  t.same(valetProcesses(v.root.configPath), [], 'no valet process left');

  const again = v.startWatcher(['--once']);
  t.equal(await again.exited, 0);
  t.same(v.finished(), ['alpha/main/first.done.md', 'alpha/main/second.done.md', 'beta/main/third.done.md'], 'nothing lost: both ran on the next start');
  const after = await v.runs();
  for (const r of after.filter((x) => x.id !== first.id)) {
    t.match(r.status, { state: 'done', attempt: 1, resumed: 1 }, `${r.id}: resumed, the stop not counted as a try`);
    t.equal(r.spans.length, 1, `${r.id}: its agent ran once`);
  }
});
