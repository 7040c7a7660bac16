import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Duplex } from 'node:stream';
import { AGENT_GATE_ENV, AGENT_GATE_FD, AGENT_GATE_GO, parseAgentGateLine, readRunStatus, type AgentGateMessage } from '@prompt-valet/core';
import { messageTurn } from '@prompt-valet/testkit';
import { BIN, collectRun, scratch, type Running, type Scratch } from './fixtures/scratch.js';

/**
 * pv-run-codex at the agent gate (docs/lifecycle.md, "Agent slots"), with
 * the test in pv-watcher's place at the other end of fd 4: the real codex
 * against the fake model starts only after go; the slot is handed back when
 * it has ended; a gate that closes first or a SIGTERM ends the run as a
 * shutdown without starting it.
 */
interface Gated extends Running {
  gate: Duplex;
  /** every message pv-run-codex wrote on the gate so far */
  messages: AgentGateMessage[];
  /** resolves at the nth message */
  nthMessage(n: number): Promise<AgentGateMessage>;
}

function startGated(t: Test, s: Scratch, record = s.record): Gated {
  const child = spawn(process.execPath, [BIN, '--config', s.configFile], {
    env: { ...s.env, [AGENT_GATE_ENV]: String(AGENT_GATE_FD) },
    stdio: ['pipe', 'pipe', 'pipe', 'ignore', 'pipe'],
  });
  const gate = child.stdio[AGENT_GATE_FD] as Duplex;
  gate.on('error', () => undefined);
  const messages: AgentGateMessage[] = [];
  const waiting: { n: number; resolve: (m: AgentGateMessage) => void }[] = [];
  readline.createInterface({ input: gate, crlfDelay: Infinity }).on('line', (line) => {
    const message = parseAgentGateLine(line);
    if (!message) return;
    messages.push(message);
    for (const w of waiting.filter((x) => x.n === messages.length)) w.resolve(message);
  });
  return {
    ...collectRun(t, child, JSON.stringify(record) + '\n'),
    gate,
    messages,
    nthMessage: (n) => (messages.length >= n ? Promise.resolve(messages[n - 1]!) : new Promise((resolve) => waiting.push({ n, resolve }))),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('the agent starts only after go; the slot is handed back once it has ended; its time limit starts with it', async (t) => {
  const s = await scratch(t, { turns: [messageTurn('done')], watcher: { runner_timeout_seconds: 4 } });
  const run = startGated(t, s);
  t.same(await run.nthMessage(1), { gate: 'wait', run_id: s.runId }, 'pv-run-codex asks for a slot');
  // Longer than the time limit: the wait must not count against it.
  await sleep(5000);
  t.equal(s.model.requests.length, 0, 'no agent while it waits');
  t.equal((await readRunStatus(s.runRoot))?.agent_runs, undefined, 'nor counted as an agent run');
  run.gate.write(`${AGENT_GATE_GO}\n`);
  t.same(await run.nthMessage(2), { gate: 'done', run_id: s.runId }, 'the slot is handed back');
  t.equal(s.model.requests.length, 1, 'after the agent had run');
  const { code, records, stderr } = await run.done;
  t.equal(code, 0, stderr);
  t.notOk(records[0]!.error, JSON.stringify(records[0]!.error));
  t.equal(records[0]!.agent?.timed_out, false, 'not stopped by a time limit that would have run out while it waited');
  t.equal(run.messages.length, 2, 'wait and done, nothing else');
});

t.test('the gate closing before go (pv-watcher stopping): no agent, aborted_shutdown, back to pending not counted', async (t) => {
  const s = await scratch(t, { turns: [messageTurn('done')] });
  const run = startGated(t, s);
  await run.nthMessage(1);
  run.gate.destroy();
  const { code, records, stderr } = await run.done;
  t.equal(code, 0, stderr);
  t.match(records[0]!.error, { code: 'aborted_shutdown', retryable: true, step: 'run-codex' });
  t.match(records[0]!.error?.message, /waited for an agent slot; the agent did not start/);
  t.equal(s.model.requests.length, 0, 'the agent never started');
  t.equal((await readRunStatus(s.runRoot))?.agent_runs, undefined, 'no agent run counted');
});

t.test('SIGTERM while waiting: no agent, aborted_shutdown, and a done so a go already on its way frees its slot', async (t) => {
  const s = await scratch(t, { turns: [messageTurn('done')] });
  const run = startGated(t, s);
  await run.nthMessage(1);
  run.child.kill('SIGTERM');
  t.same(await run.nthMessage(2), { gate: 'done', run_id: s.runId });
  const { code, records, stderr } = await run.done;
  t.equal(code, 0, stderr);
  t.match(records[0]!.error, { code: 'aborted_shutdown', retryable: true });
  t.equal(s.model.requests.length, 0);
});

t.test('a record that fails its checks never asks for a slot', async (t) => {
  const s = await scratch(t, { turns: [messageTurn('done')] });
  const record = { ...s.record, checkout: { ...s.record.checkout!, dir: path.join(s.root, 'elsewhere') } };
  const run = startGated(t, s, record);
  const { code, records, stderr } = await run.done;
  t.equal(code, 0, stderr);
  t.equal(records[0]!.error?.code, 'foreign_path');
  t.same(run.messages, [], 'nothing on the gate');
});

t.test('PV_AGENT_GATE_FD naming no socket: said once, and the agent starts at once', async (t) => {
  const s = await scratch(t, { turns: [messageTurn('done')] });
  const child = spawn(process.execPath, [BIN, '--config', s.configFile], { env: { ...s.env, [AGENT_GATE_ENV]: String(AGENT_GATE_FD) }, stdio: ['pipe', 'pipe', 'pipe'] });
  const { code, records, stderr } = await collectRun(t, child, JSON.stringify(s.record) + '\n').done;
  t.equal(code, 0, stderr);
  t.notOk(records[0]!.error);
  t.match(stderr, /PV_AGENT_GATE_FD=4 names no open socket: agents start without waiting for a slot/);
});
