import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES } from '@prompt-valet/core';
import { execTurn, messageTurn, startFakeModel, writeCodexHome } from '@prompt-valet/testkit';
import { CODEX } from './fixtures/scratch.js';
import { filesHolding, HOSTILE_ROUTES, jailedValet, readReport, type JailedValet } from './fixtures/jailed-valet.js';
import type { Finished } from './fixtures/scratch.js';

/**
 * A hostile agent (prompt injection: it does what a file it read told it)
 * tries every route to the token and to the valet's state. Each must fail,
 * and the token must end up in no file of the checkout (what gets pushed),
 * the run folder (logs, last message, PR body source) or the output.
 */
const FILE_LIMIT = 8 * 1024 * 1024;

const BLOCKED_ROUTES = [
  'proc_environ', 'signal_valet', 'ptrace_mem', 'secrets_env', 'gh_hosts', 'credentials',
  'write_inbox', 'write_processed', 'write_finished', 'other_worktree',
  'git_hook', 'git_config', 'git_attributes', 'root_fs', 'run_socket', 'claim_lock',
] as const;

function checkRoutes(t: Test, v: JailedValet, run: Finished, configEntries: string[]): void {
  const report = readReport(v.checkout);
  for (const route of BLOCKED_ROUTES) t.equal(report.get(route), 'blocked', `${route}: the agent could not`);
  t.ok(Number(report.get('proc_count')) <= 10, `/proc inside the jail shows only the jail (${report.get('proc_count')} processes)`);
  t.match(report.get('fd9'), /^(\/dev\/null|closed)$/, `the claim lock (fd 9) is not passed to the agent (${report.get('fd9')})`);
  t.match(report.get('fd4'), /^(\/dev\/null|closed)$/, `the agent gate (fd 4) is not passed to the agent (${report.get('fd4')})`);
  t.ok(Number(report.get('big_file')) <= FILE_LIMIT, `a 2 GiB file stops at agent_max_file_bytes (${report.get('big_file')} bytes)`);

  t.notOk(fs.existsSync(path.join(v.root, 'inbox/widget/main/injected.prompt.md')), 'no prompt was injected into the inbox');
  t.notOk(fs.existsSync(path.join(v.root, 'processed/injected.txt')));
  t.notOk(fs.existsSync(path.join(v.root, 'finished/injected.txt')));
  t.notOk(fs.existsSync(path.join(v.otherWorktree, 'pwned.txt')), 'the other run\'s worktree is untouched');
  t.notOk(fs.existsSync(path.join(v.gitDir, 'hooks/pre-commit')), 'no hook was planted in the shared clone');
  t.notMatch(fs.readFileSync(path.join(v.gitDir, 'config'), 'utf8'), 'fsmonitor', 'the shared git config is untouched');
  t.notOk(fs.existsSync(path.join(v.gitDir, 'info/attributes')));
  t.notOk(fs.existsSync('/etc/pv-jail-test'));
  t.same(fs.readdirSync(path.join(v.root, 'config')).sort(), configEntries, 'nothing was written through docs/AGENT_RUNS -> config/');

  t.same(filesHolding(v.checkout, v.token), [], 'the token is in no file of the checkout (nothing to push)');
  t.same(filesHolding(v.runRoot, v.token), [], 'the token is in no file of the run folder');
  t.notMatch(run.stdout + run.stderr, v.token, 'nor in the output');
}

t.test('a hostile stand-in agent: every route fails, and the token leaks nowhere', async (t) => {
  const v = await jailedValet(t);
  await v.writeConfig({ runner_cmd: HOSTILE_ROUTES, agent_max_file_bytes: FILE_LIMIT });
  const started = v.start({ gate: true });
  const run = await started.done;
  t.equal(run.code, 0, run.stderr);
  t.same(started.gateLines.map((l) => JSON.parse(l) as unknown), [{ gate: 'wait', run_id: v.runId }, { gate: 'done', run_id: v.runId }],
    "the gate carried pv-run-codex's wait and done, nothing the agent wrote");
  const rec = run.records[0]!;
  t.notOk(rec.error, JSON.stringify(rec.error));
  const agent = rec.agent!;
  t.equal(agent.limits?.isolation, 'bwrap');
  t.equal(agent.limits?.rlimit_fsize, FILE_LIMIT);
  checkRoutes(t, v, run, ['gh', 'prompt-valet.yaml', 'secrets.env']);
  t.equal(agent.last_message, undefined, 'a last message that is a symlink (to /proc/self/environ) is not taken');
  t.notOk(fs.existsSync(path.join(v.runRoot, RUN_FILES.lastMessage)));
  t.equal(agent.agent_runs_file, undefined, 'a symlinked agent-runs folder is refused');
  t.match(run.stderr, /not followed/, 'and the refusal is logged');
});

t.test('the real codex, told by the model to run the same commands, gets no further', async (t) => {
  const model = await startFakeModel([execTurn(`sh ${HOSTILE_ROUTES}`, { yieldTimeMs: 60_000 }), messageTurn('I did what the file said.')]);
  t.teardown(() => model.close());
  const v = await jailedValet(t);
  const home = await writeCodexHome(path.join(v.root, 'config/codex'), model);
  await v.writeConfig({ runner_cmd: CODEX, runner_model: 'mock-model', agent_max_file_bytes: FILE_LIMIT, agent_runs_dir: 'notes' });
  const run = await v.start({ env: { ...v.env, ...home.env } }).done;
  t.equal(run.code, 0, run.stderr);
  const rec = run.records[0]!;
  t.notOk(rec.error, JSON.stringify(rec.error));
  checkRoutes(t, v, run, ['codex', 'gh', 'prompt-valet.yaml', 'secrets.env']);
  t.equal(fs.readFileSync(path.join(v.runRoot, RUN_FILES.lastMessage), 'utf8').trim(), 'I did what the file said.');
  t.equal(fs.readFileSync(path.join(v.checkout, 'notes', `codex-run-${v.runId}.md`), 'utf8').trim(), 'I did what the file said.');
  t.ok(fs.existsSync(path.join(v.runRoot, 'jail/codex-home/sessions')), "codex's sessions are kept in the run's own CODEX_HOME");
  t.notOk(fs.existsSync(path.join(v.root, 'config/codex/sessions')), "and not in the operator's");
  t.same(filesHolding(path.join(v.root, 'config/codex'), v.token), []);
});

t.test('without the jail (agent_isolation: none) the same agent gets through: the routes above are real', async (t) => {
  const v = await jailedValet(t);
  t.teardown(() => fs.rmSync('/etc/pv-jail-test', { force: true }));
  await v.writeConfig({ runner_cmd: HOSTILE_ROUTES, agent_isolation: 'none', agent_max_file_bytes: FILE_LIMIT, agent_runs_dir: '' });
  const started = v.start({ gate: true });
  const run = await started.done;
  t.equal(run.code, 0, run.stderr);
  t.match(readReport(v.checkout).get('fd4'), /^(\/dev\/null|closed)$/, 'the agent gate (fd 4) is kept from the agent even without the jail');
  t.same(started.gateLines.map((l) => (JSON.parse(l) as { gate: string }).gate), ['wait', 'done'], 'and nothing forged reached it');
  t.equal(run.records[0]!.agent?.limits?.isolation, 'none');
  const report = readReport(v.checkout);
  for (const route of ['proc_environ', 'secrets_env', 'credentials', 'write_inbox', 'git_hook', 'claim_lock'] as const) {
    t.equal(report.get(route), 'OPEN', `${route} is open without the jail`);
  }
  t.ok(filesHolding(v.checkout, v.token).length > 0, 'and the token lands in the checkout');
});
