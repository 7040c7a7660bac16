import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  checkClaimRel,
  checkoutOfRecord,
  countAgentRun,
  expectPath,
  FrontMatterError,
  markStepDone,
  readStepDone,
  runOfRecord,
  type ValetRoots,
  StepError,
  isErrno,
  parsePrompt,
  recordError,
  resolveInside,
  runFile,
  updateRunStatus,
  withError,
  writeFileAtomic,
  type AgentSection,
  type FrontMatter,
  type Logger,
  type PvRecord,
  type WatcherConfig,
} from '@prompt-valet/core';
import { buildAgentEnv } from './agent-env.js';
import { runAgent, type AgentExit } from './agent-process.js';
import { agentErrors, isTransientFailure, usageFromHumanOutput, UsageCounter, type TokenUsage } from './outcome.js';

export const STEP = 'run-codex';

export interface RunPromptDeps {
  watcher: WatcherConfig;
  /** where runs and checkouts live: every path is derived from these and the record's ids */
  roots: ValetRoots;
  /** the runner found on PATH, or undefined when it is missing */
  runnerPath: string | undefined;
  /** keep the agent's JSON event stream (codex exec --json) */
  json: boolean;
  /** the environment the agent's own is derived from */
  env: NodeJS.ProcessEnv;
  shutdown: AbortSignal;
  log: Logger;
}

/** What pv-run-codex adds to the record, beyond core's AgentSection. */
export interface RunCodexSection extends AgentSection {
  idle_timed_out: boolean;
  /** `abort_file` (ABORT in the run folder) or `shutdown` (pv-run-codex was stopped) */
  abort_reason?: 'abort_file' | 'shutdown';
  signal?: string;
  model: string;
  sandbox: string;
  /** the agent's JSON event stream, with --json */
  events?: string;
  /** the last message's copy inside the checkout, relative to it */
  agent_runs_file?: string;
  usage?: TokenUsage;
  /** processes the agent left running, stopped after it exited */
  leftovers_stopped?: number;
}

interface Inputs {
  runRoot: string;
  checkoutDir: string;
  runId: string;
  promptFile: string;
  body: string;
  frontMatter: FrontMatter;
}

/**
 * One record: run the agent on the prompt in the run's checkout and add the
 * `agent` section. A failed run is returned with both the `agent` section and
 * an `error`, so pv-settle sees what happened.
 */
export async function runPrompt(rec: PvRecord, deps: RunPromptDeps): Promise<PvRecord> {
  if (deps.shutdown.aborted) {
    throw new StepError('aborted_shutdown', 'pv-run-codex was stopped before this prompt ran', { retryable: true });
  }
  const inputs = await readInputs(rec, deps.roots);
  // A resumed run whose agent already finished is not run again (docs/lifecycle.md).
  const done = await readStepDone<RunCodexSection>(inputs.runRoot, STEP);
  if (done) {
    deps.log.info(`${inputs.runId}: the agent finished in an earlier try; not running it again`);
    return { ...rec, agent: done };
  }
  if (!deps.runnerPath) {
    throw new StepError(
      'runner_missing',
      `the agent runner "${deps.watcher.runner_cmd}" is not installed or not on PATH (watcher.runner_cmd); install @openai/codex or point watcher.runner_cmd at it`,
    );
  }
  const w = deps.watcher;
  const model = inputs.frontMatter.model ?? w.runner_model;
  const sandbox = inputs.frontMatter.sandbox ?? w.runner_sandbox;
  const timeoutSeconds = inputs.frontMatter.timeout ?? w.runner_timeout_seconds;
  const lastMessage = runFile(inputs.runRoot, 'lastMessage');
  const logFile = runFile(inputs.runRoot, 'log');
  const eventsFile = deps.json ? runFile(inputs.runRoot, 'events') : undefined;

  await updateRunStatus(inputs.runRoot, { state: 'running', step: STEP });
  // A last message left by an earlier attempt must not pass for this one's.
  await fsp.rm(lastMessage, { force: true });

  const args = [
    'exec',
    '--skip-git-repo-check',
    '--cd', inputs.checkoutDir,
    '--output-last-message', lastMessage,
    '--model', model,
    '--sandbox', sandbox,
    ...(deps.json ? ['--json'] : []),
    ...w.runner_extra_args,
    '-',
  ];
  const marker = randomUUID();
  const env = buildAgentEnv(deps.env, w.runner_secret_env, {
    PV_RUN_ID: inputs.runId,
    PV_RUN_ROOT: inputs.runRoot,
    PV_PROMPT_FILE: inputs.promptFile,
  }, marker);

  await fsp.appendFile(logFile, `pv-run-codex: ${new Date().toISOString()} running ${deps.runnerPath} ${args.join(' ')}\n`);
  deps.log.info(`${inputs.runId}: running ${w.runner_cmd} (model ${model}, sandbox ${sandbox}, limit ${timeoutSeconds}s)`);
  const usageCounter = new UsageCounter();
  await countAgentRun(inputs.runRoot);
  const exit = await runAgent({
    command: deps.runnerPath,
    args,
    cwd: inputs.checkoutDir,
    env,
    input: inputs.body,
    logFile,
    ...(eventsFile ? { eventsFile, onStdoutLine: (line: string) => usageCounter.addEventLine(line) } : {}),
    abortFile: runFile(inputs.runRoot, 'abort'),
    limits: {
      timeoutMs: timeoutSeconds * 1000,
      idleTimeoutMs: w.runner_idle_timeout_seconds * 1000,
      killGraceMs: w.runner_kill_grace_seconds * 1000,
    },
    shutdown: deps.shutdown,
    marker,
  });
  const usage = deps.json ? usageCounter.result() : usageFromHumanOutput(exit.outputTail);

  const agent: RunCodexSection = {
    exit_code: exit.exitCode,
    duration_ms: exit.durationMs,
    timed_out: exit.stoppedFor === 'timeout',
    idle_timed_out: exit.stoppedFor === 'idle_timeout',
    aborted: exit.stoppedFor === 'abort_file' || exit.stoppedFor === 'shutdown',
    model,
    sandbox,
    log: logFile,
  };
  if (exit.stoppedFor === 'abort_file' || exit.stoppedFor === 'shutdown') agent.abort_reason = exit.stoppedFor;
  if (exit.signal) agent.signal = exit.signal;
  if (eventsFile) agent.events = eventsFile;
  if (usage) agent.usage = usage;
  if (exit.leftoversStopped > 0) agent.leftovers_stopped = exit.leftoversStopped;
  if (await fileExists(lastMessage)) {
    agent.last_message = lastMessage;
    const copied = await copyIntoCheckout(lastMessage, inputs, w.agent_runs_dir, deps.log);
    if (copied) agent.agent_runs_file = copied;
  }

  const error = failure(exit, w, timeoutSeconds);
  await fsp.appendFile(logFile, `pv-run-codex: ${new Date().toISOString()} ${error ? error.message : 'agent finished'}\n`);
  await updateRunStatus(inputs.runRoot, {
    durations_ms: { [STEP]: exit.durationMs },
    ...(usage ? { usage } : {}),
    agent,
  });
  const out: PvRecord = { ...rec, agent };
  if (!error) {
    await markStepDone(inputs.runRoot, STEP, agent);
    return out;
  }
  deps.log.warn(`${inputs.runId}: ${error.message}`);
  return withError(out, error);
}

async function readInputs(rec: PvRecord, roots: ValetRoots): Promise<Inputs> {
  // Paths come from the configuration and the record's ids; a record naming
  // other places (claim.run_root, checkout.dir, claim.path) fails foreign_path.
  const { runId, runRoot } = runOfRecord(rec, roots);
  const checkoutDir = checkoutOfRecord(rec, roots, runId);
  const claimRel = rec.claim?.rel;
  const runningFile = typeof claimRel === 'string' ? path.join(path.resolve(roots.inbox), checkClaimRel(claimRel)) : undefined;
  if (runningFile) expectPath('claim.path', rec.claim?.path, runningFile);
  try {
    if (!(await fsp.lstat(checkoutDir)).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new StepError('checkout_missing', `the run's checkout ${checkoutDir} does not exist or is not a folder`);
  }

  // The run folder's copy is what was claimed; the claimed file is the fallback.
  const candidates = [runFile(runRoot, 'prompt'), runningFile].filter((p): p is string => typeof p === 'string');
  let text: string | undefined;
  let promptFile = '';
  for (const file of candidates) {
    try {
      text = await readFileNoFollow(file);
      promptFile = file;
      break;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw new StepError('prompt_unreadable', `cannot read the prompt ${file}: ${(err as Error).message}`);
    }
  }
  if (text === undefined) {
    throw new StepError('prompt_missing', `the prompt is gone: neither ${candidates.join(' nor ')} exists`);
  }
  let parsed;
  try {
    parsed = parsePrompt(text);
  } catch (err) {
    if (err instanceof FrontMatterError) throw new StepError('bad_front_matter', `${promptFile}: ${err.message}`);
    throw err;
  }
  const frontMatter: FrontMatter = { ...parsed.front_matter, ...(rec.target?.front_matter ?? {}) };
  if (parsed.body.trim() === '') throw new StepError('empty_prompt', `${promptFile}: the prompt has no text after its front matter`);
  return { runRoot, checkoutDir, runId, promptFile, body: parsed.body, frontMatter };
}

/** The error a run ends with, or undefined when it succeeded. */
function failure(exit: AgentExit, w: WatcherConfig, timeoutSeconds: number) {
  if (exit.spawnError) {
    const code = exit.spawnError.code === 'ENOENT' || exit.spawnError.code === 'EACCES' ? 'runner_missing' : 'agent_failed';
    return recordError(STEP, code, `could not start ${w.runner_cmd}: ${exit.spawnError.message}`, false);
  }
  switch (exit.stoppedFor) {
    case 'timeout':
      return recordError(STEP, 'agent_timeout', `the agent ran longer than ${timeoutSeconds}s and was stopped`, false);
    case 'idle_timeout':
      return recordError(STEP, 'agent_idle_timeout', `the agent printed nothing for ${w.runner_idle_timeout_seconds}s and was stopped`, false);
    case 'abort_file':
      return recordError(STEP, 'aborted', 'the run was aborted (ABORT file in the run folder)', false);
    case 'shutdown':
      return recordError(STEP, 'aborted_shutdown', 'pv-run-codex was stopped while the agent ran; the prompt can run again', true);
    case undefined:
      break;
  }
  if (exit.exitCode === 0) return undefined;
  const errors = agentErrors(exit.outputTail);
  const how = exit.exitCode === null ? `was killed by ${exit.signal ?? 'a signal'}` : `exited with status ${exit.exitCode}`;
  const said = errors.length > 0 ? `: ${errors[errors.length - 1]}` : '';
  const detail = exit.outputTail.split('\n').slice(-40).join('\n');
  return recordError(STEP, 'agent_failed', `the agent ${how}${said}`, isTransientFailure(errors), detail);
}

/**
 * The last message also goes into the checkout (`agent_runs_dir`), so it
 * lands in the pull request. Returns its path relative to the checkout.
 * Failing to write it costs the PR a file, not the run: logged, not fatal.
 */
async function copyIntoCheckout(lastMessage: string, inputs: Inputs, agentRunsDir: string, log: Logger): Promise<string | undefined> {
  if (!agentRunsDir) return undefined;
  const rel = path.posix.join(agentRunsDir, `codex-run-${inputs.runId}.md`);
  try {
    const dest = await resolveInside(inputs.checkoutDir, rel);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await writeFileAtomic(dest, await fsp.readFile(lastMessage));
    return rel;
  } catch (err) {
    log.warn(`${inputs.runId}: could not write ${rel} in the checkout: ${(err as Error).message}`);
    return undefined;
  }
}

async function fileExists(file: string): Promise<boolean> {
  try {
    return (await fsp.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The prompt is read by name, never through a symlink planted in its place. */
async function readFileNoFollow(file: string): Promise<string> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}
