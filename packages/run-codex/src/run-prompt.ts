import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  AGENT_GATE_FD,
  expectErrno,
  checkClaimRel,
  checkedFollowUp,
  checkoutOfRecord,
  countAgentRun,
  expectPath,
  lstatIfPresent,
  markStepDone,
  readPromptText,
  readStepDone,
  repoDirFor,
  runOfRecord,
  type ValetRoots,
  StepError,
  agentSettings,
  isErrno,
  splitPrompt,
  totalTokens,
  recordError,
  runFile,
  updateRunStatus,
  withError,
  writeFileAtomic,
  type AgentSection,
  type FrontMatter,
  type IncompleteReason,
  type RecordError,
  type Logger,
  type PvRecord,
  type ValetConfig,
  type WatcherConfig,
} from '@prompt-valet/core';
import { buildAgentEnv } from './agent-env.js';
import type { AgentSlots } from './agent-slot.js';
import { runAgent, type AgentExit } from './agent-process.js';
import { fillRunCodexHome, operatorCodexHome } from './codex-home.js';
import { filesCutAtSizeLimit } from './file-size-limit.js';
import { hostJailDirs, JAIL_PATHS, makeHostJailDirs, planAgentLaunch } from './jail.js';
import { readFileNoFollow, writeInsideNoFollow } from './safe-files.js';
import { agentErrors, isTransientFailure, usageFromHumanOutput, UsageCounter } from './outcome.js';
import { finalUsage, SessionUsageFollower } from './token-budget.js';
import { describeContinuation, findRunSession, prepareContinuation, recordSession, sessionIdOfEvent } from './session.js';

export const STEP = 'run-codex';
/** The agent stopped for good (a limit, an abort): recorded so a resumed run keeps its work instead of redoing it. */
const STOPPED_STEP = 'run-codex-stopped';

interface StoppedAgent {
  agent: AgentSection;
  error: RecordError;
}

export interface RunPromptDeps {
  watcher: WatcherConfig;
  /** the whole configuration: the jail hides its folders */
  config: ValetConfig;
  /** the configuration file read, if any (its folder is hidden from the agent) */
  configPath: string | undefined;
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
  /** pv-watcher's agent gate, when this pv-run-codex runs in its pipeline: an agent starts only once granted a slot */
  agentSlots?: AgentSlots;
}

/** The agent section pv-run-codex writes: core's AgentSection, every field listed there. */
export type RunCodexSection = AgentSection;

/** The largest last message taken from the jail; the rest is cut (the agent wrote it). */
export const LAST_MESSAGE_MAX_BYTES = 1024 * 1024;

interface Inputs {
  runRoot: string;
  /** the shared clone `repos_root/<owner>/<repo>`, from the configuration and the checked target */
  repoDir: string;
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
  const inputs = await readInputs(rec, deps.roots, deps.config.limits.max_prompt_bytes);
  // A resumed run whose agent already finished is not run again (docs/lifecycle.md).
  const done = await readStepDone<RunCodexSection>(inputs.runRoot, STEP);
  if (done) {
    deps.log.info(`${inputs.runId}: the agent finished in an earlier try; not running it again`);
    return { ...rec, agent: done };
  }
  // Nor is one stopped for good (its limits, an abort): its error is re-emitted and its work kept.
  const stopped = await readStepDone<StoppedAgent>(inputs.runRoot, STOPPED_STEP);
  if (stopped) {
    deps.log.info(`${inputs.runId}: the agent was stopped in an earlier try (${stopped.error.code}); not running it again`);
    return { ...rec, agent: stopped.agent, error: stopped.error };
  }
  if (!deps.runnerPath) {
    throw new StepError(
      'runner_missing',
      `the agent runner "${deps.watcher.runner_cmd}" is not installed or not on PATH (watcher.runner_cmd); install @openai/codex or point watcher.runner_cmd at it`,
    );
  }
  const w = deps.watcher;
  // Within the operator's limits whatever the record says (FrontMatterError fails the record).
  const { model, sandbox, timeoutSeconds, maxTokens } = agentSettings(inputs.frontMatter, w);
  const lastMessage = runFile(inputs.runRoot, 'lastMessage');
  const logFile = runFile(inputs.runRoot, 'log');
  const eventsFile = deps.json ? runFile(inputs.runRoot, 'events') : undefined;

  // A last message left by an earlier attempt must not pass for this one's.
  await fsp.rm(lastMessage, { force: true });
  const jailed = w.agent_isolation === 'bwrap';
  const jailDirs = hostJailDirs(inputs.runRoot);
  makeHostJailDirs(jailDirs);
  await fsp.rm(path.join(jailDirs.out, 'last-message.md'), { force: true });
  fillRunCodexHome(operatorCodexHome(deps.env), jailDirs.codexHome);
  // A follow-up goes on with the earlier run's codex session when it is known (session.ts).
  const followUp = rec.target ? await checkedFollowUp(inputs.runRoot, rec.target) : undefined;
  const continuation = followUp ? await prepareContinuation(deps.roots, followUp, String(rec.target?.agent_branch), jailDirs.codexHome, deps.log) : undefined;
  // The same folders, as the agent sees them.
  const seen = jailed
    ? { out: JAIL_PATHS.out, home: JAIL_PATHS.home, tmp: JAIL_PATHS.tmp, codexHome: JAIL_PATHS.codexHome, prompt: JAIL_PATHS.prompt }
    : { ...jailDirs, prompt: inputs.promptFile };

  const args = [
    'exec',
    '--skip-git-repo-check',
    '--cd', inputs.checkoutDir,
    '--output-last-message', path.join(seen.out, 'last-message.md'),
    '--model', model,
    '--sandbox', sandbox,
    ...(deps.json ? ['--json'] : []),
    ...w.runner_extra_args,
    ...(continuation?.kind === 'resumed' ? ['resume', continuation.sessionId] : []),
    '-',
  ];
  const marker = randomUUID();
  const env = buildAgentEnv(deps.env, w.runner_secret_env, {
    PV_RUN_ID: inputs.runId,
    ...(jailed ? {} : { PV_RUN_ROOT: inputs.runRoot }),
    PV_PROMPT_FILE: seen.prompt,
  }, marker, seen);
  const launch = planAgentLaunch({
    config: deps.config,
    configPath: deps.configPath,
    env: deps.env,
    checkoutDir: inputs.checkoutDir,
    sharedGitDir: sharedGitDirFor(inputs.repoDir),
    promptFile: inputs.promptFile,
    dirs: jailDirs,
  }, deps.runnerPath, args, inputs.runId);

  // Every check that can fail without an agent is behind us: only now wait for an agent slot,
  // so a bad record never holds one, and the time and idle limits start with the agent.
  if (deps.agentSlots) {
    const answer = await deps.agentSlots.acquire(inputs.runId, deps.shutdown);
    if (answer !== 'go') {
      await launch.cgroup?.remove();
      const why = answer === 'refused' ? 'pv-watcher is stopping (the agent gate closed)' : 'pv-run-codex was stopped';
      throw new StepError('aborted_shutdown', `${why} while this prompt waited for an agent slot; the agent did not start`, { retryable: true });
    }
  }
  const usageCounter = new UsageCounter();
  const sessionUsage = new SessionUsageFollower(jailDirs.codexHome);
  let announcedSession: string | undefined;
  const runCgroup = launch.cgroup;
  let agentStartedMs: number;
  let exit: AgentExit;
  // From go until the agent has ended the slot is this run's; whatever happens, it is handed back.
  try {
    await updateRunStatus(inputs.runRoot, { state: 'running', step: STEP });
    if (continuation) await fsp.appendFile(logFile, `pv-run-codex: ${new Date().toISOString()} ${describeContinuation(continuation)}\n`);
    await fsp.appendFile(logFile, `pv-run-codex: ${new Date().toISOString()} running ${deps.runnerPath} ${args.join(' ')}\n`);
    deps.log.info(`${inputs.runId}: running ${w.runner_cmd} (model ${model}, sandbox ${sandbox}, limit ${timeoutSeconds}s${maxTokens > 0 ? `, ${maxTokens} tokens` : ''})`);
    sessionUsage.start();
    await countAgentRun(inputs.runRoot);
    // Files the agent cut at RLIMIT_FSIZE are those changed since now; a second back for coarse file timestamps.
    agentStartedMs = Date.now() - 1000;
    exit = await runAgent({
      command: launch.command,
      args: launch.args,
      blankInheritedFds: jailed,
      ...(runCgroup ? { limitTripped: () => Object.values(runCgroup.tripped()).some(Boolean) } : {}),
      ...(maxTokens > 0 ? { overBudget: () => totalTokens(finalUsage(usageCounter.result(), sessionUsage.poll())) > maxTokens } : {}),
      cwd: inputs.checkoutDir,
      env,
      input: continuation?.kind === 'fresh' ? continuation.preamble + inputs.body : inputs.body,
      logFile,
      ...(eventsFile ? {
        eventsFile,
        onStdoutLine: (line: string) => {
          usageCounter.addEventLine(line);
          announcedSession ??= sessionIdOfEvent(line);
        },
      } : {}),
      abortFile: runFile(inputs.runRoot, 'abort'),
      limits: {
        timeoutMs: timeoutSeconds * 1000,
        idleTimeoutMs: w.runner_idle_timeout_seconds * 1000,
        killGraceMs: w.runner_kill_grace_seconds * 1000,
      },
      shutdown: deps.shutdown,
      marker,
      // The gate is the watcher's, never the agent's (jailed or not): with it an agent could free slots. Node
      // already marks inherited descriptors close-on-exec at start-up; this does not rest on that.
      ...(deps.agentSlots ? { blankFds: [AGENT_GATE_FD] } : {}),
    });
  } finally {
    // The agent and whatever it left are gone: the next run's agent may start while this one publishes.
    deps.agentSlots?.release(inputs.runId);
  }
  const cutFiles = await cutFilesOrNone(inputs, deps, agentStartedMs);
  const tripped = limitsTripped(exit, launch.cgroup?.tripped(), cutFiles);
  await launch.cgroup?.remove();
  const usage = finalUsage(deps.json ? usageCounter.result() : usageFromHumanOutput(exit.outputTail), sessionUsage.poll());
  // Past the cap whether it was stopped for it or finished within the same response.
  const overBudget = maxTokens > 0 ? Math.max(0, totalTokens(usage) - maxTokens) : 0;
  const budgetStop = exit.stoppedFor === 'budget_exceeded' || (overBudget > 0 && exit.stoppedFor === undefined && !exit.spawnError);

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
  if (maxTokens > 0) agent.max_tokens = maxTokens;
  if (overBudget > 0) agent.tokens_over_budget = overBudget;
  if (exit.leftoversStopped > 0) agent.leftovers_stopped = exit.leftoversStopped;
  agent.limits = launch.applied;
  const session = findRunSession(jailDirs.codexHome, announcedSession);
  if (session) {
    await recordSession(inputs.runRoot, session);
    agent.session_id = session.session_id;
  }
  if (continuation) agent.continued = continuation.kind;
  if (tripped.length > 0) agent.limits_tripped = tripped;
  const message = takeLastMessage(path.join(jailDirs.out, 'last-message.md'), inputs.runId, deps.log);
  if (message) {
    await writeFileAtomic(lastMessage, message);
    agent.last_message = lastMessage;
    const copied = copyIntoCheckout(message, inputs, w.agent_runs_dir, deps.log);
    if (copied) agent.agent_runs_file = copied;
  }

  let error: RecordError | undefined;
  if (tripped.length > 0) {
    error = recordError(STEP, 'resource_limit', limitMessage(tripped, w, cutFiles), false);
  } else if (budgetStop) {
    const capFrom = inputs.frontMatter.max_tokens !== undefined ? 'front matter max_tokens' : 'watcher.runner_max_tokens';
    const how = exit.stoppedFor === 'budget_exceeded' ? 'and was stopped' : 'in the response it finished with';
    error = recordError(STEP, 'budget_exceeded', `the agent used ${totalTokens(usage)} tokens, ${overBudget} more than its cap of ${maxTokens} (${capFrom}), ${how}`, false);
  } else {
    error = failure(exit, w, timeoutSeconds);
  }
  error = withIncompleteReason(error, exit);
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
  if (error.incomplete) await markStepDone<StoppedAgent>(inputs.runRoot, STOPPED_STEP, { agent, error });
  return withError(out, error);
}

async function readInputs(rec: PvRecord, roots: ValetRoots, maxPromptBytes: number): Promise<Inputs> {
  // Paths come from the configuration and the record's ids; a record naming
  // other places (claim.run_root, checkout.dir, claim.path) fails foreign_path.
  const { runId, runRoot } = runOfRecord(rec, roots);
  const checkoutDir = checkoutOfRecord(rec, roots, runId);
  // checkoutOfRecord has checked target.owner and target.repo.
  const repoDir = repoDirFor(roots, rec.target!.owner, rec.target!.repo);
  const claimRel = rec.claim?.rel;
  const runningFile = typeof claimRel === 'string' ? path.join(path.resolve(roots.inbox), checkClaimRel(claimRel)) : undefined;
  if (runningFile) expectPath('claim.path', rec.claim?.path, runningFile);
  const checkout = await fsp.lstat(checkoutDir).catch((err: unknown) => {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return undefined;
  });
  if (!checkout?.isDirectory()) {
    throw new StepError('checkout_missing', `the run's checkout ${checkoutDir} does not exist or is not a folder`);
  }

  // The run folder's copy is what was claimed; the claimed file is the fallback.
  const candidates = [runFile(runRoot, 'prompt'), runningFile].filter((p): p is string => typeof p === 'string');
  let text: string | undefined;
  let promptFile = '';
  for (const file of candidates) {
    try {
      text = await readPromptText(file, maxPromptBytes);
      promptFile = file;
      break;
    } catch (err) {
      if (err instanceof StepError || (err as { code?: unknown }).code === 'prompt_too_large') throw err;
      if (!isErrno(err, 'ENOENT')) throw new StepError('prompt_unreadable', `cannot read the prompt ${file}: ${(err as Error).message}`);
    }
  }
  if (text === undefined) {
    throw new StepError('prompt_missing', `the prompt is gone: neither ${candidates.join(' nor ')} exists`);
  }
  // The front matter was checked once by pv-resolve: its result is target.front_matter, re-checked in runPrompt.
  const parsed = splitPrompt(text);
  const frontMatter: FrontMatter = rec.target?.front_matter ?? {};
  if (parsed.body.trim() === '') throw new StepError('empty_prompt', `${promptFile}: the prompt has no text after its front matter`);
  return { runRoot, repoDir, checkoutDir, runId, promptFile, body: parsed.body, frontMatter };
}

/**
 * A run stopped before the agent finished (its time or idle limit, the
 * operator's abort, its token cap) has work worth keeping: the error says
 * why, and pv-publish keeps the work (watcher.keep_incomplete_work). A
 * shutdown is not among them: that run resumes.
 */
function withIncompleteReason(error: RecordError | undefined, exit: AgentExit): RecordError | undefined {
  if (!error) return undefined;
  const reasons: Partial<Record<string, IncompleteReason>> = {
    agent_timeout: 'timeout', agent_idle_timeout: 'idle_timeout', aborted: 'aborted', budget_exceeded: 'budget_exceeded',
  };
  const reason = reasons[error.code];
  if (!reason || exit.spawnError) return error;
  return { ...error, incomplete: { reason } };
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
    case 'resource_limit':
      return recordError(STEP, 'resource_limit', 'the agent hit a resource limit (watcher.agent_max_*) and was stopped', false);
    case 'budget_exceeded':
      return recordError(STEP, 'budget_exceeded', 'the agent passed its token cap and was stopped', false);
    case 'shutdown':
      return recordError(STEP, 'aborted_shutdown', 'pv-run-codex was stopped while the agent ran; the prompt can run again', true);
    case undefined:
      break;
  }
  if (exit.exitCode === 0) return undefined;
  // bwrap itself failed: the jail could not be set up, so the agent never ran. Not the
  // prompt's fault (a mount the unit's namespace lost, say, after the watcher died): retry.
  // Only when bwrap spoke first: once codex runs, its banner comes first, so an agent
  // printing "bwrap:" cannot pass its own failure off as the jail's.
  const firstLine = exit.outputTail.split('\n').find((l) => l.trim() !== '') ?? '';
  const jailLine = firstLine.startsWith('bwrap: ') ? firstLine : undefined;
  if (jailLine && exit.outputTail.length < 4096) {
    return recordError(STEP, 'jail_failed', `the agent jail could not be set up (${jailLine}); the agent did not run`, true, exit.outputTail.split('\n').slice(-40).join('\n'));
  }
  const errors = agentErrors(exit.outputTail);
  const how = exit.exitCode === null ? `was killed by ${exit.signal ?? 'a signal'}` : `exited with status ${exit.exitCode}`;
  const said = errors.length > 0 ? `: ${errors[errors.length - 1]}` : '';
  const detail = exit.outputTail.split('\n').slice(-40).join('\n');
  return recordError(STEP, 'agent_failed', `the agent ${how}${said}`, isTransientFailure(errors), detail);
}

/**
 * The last message also goes into the checkout (`agent_runs_dir`), so it
 * lands in the pull request. Returns its path relative to the checkout.
 * No symlink in the checkout is followed (the agent made them). Failing to
 * write it costs the PR a file, not the run: logged, not fatal.
 */
function copyIntoCheckout(message: Buffer, inputs: Inputs, agentRunsDir: string, log: Logger): string | undefined {
  if (!agentRunsDir) return undefined;
  const rel = path.posix.join(agentRunsDir, `codex-run-${inputs.runId}.md`);
  try {
    writeInsideNoFollow(inputs.checkoutDir, rel, message);
    return rel;
  } catch (err) {
    log.warn(`${inputs.runId}: could not write ${rel} in the checkout: ${(err as Error).message}`);
    return undefined;
  }
}

/** The agent's last message from the jail's output folder: never through a symlink, size-capped. */
function takeLastMessage(file: string, runId: string, log: Logger): Buffer | undefined {
  try {
    const got = readFileNoFollow(file, LAST_MESSAGE_MAX_BYTES);
    if (!got) return undefined;
    if (!got.truncated) return got.data;
    log.warn(`${runId}: the last message is larger than ${LAST_MESSAGE_MAX_BYTES} bytes: cut`);
    return Buffer.concat([got.data, Buffer.from(`\n\n[cut by pv-run-codex at ${LAST_MESSAGE_MAX_BYTES} bytes]\n`)]);
  } catch (err) {
    log.warn(`${runId}: the agent's last message was not taken: ${(err as Error).message}`);
    return undefined;
  }
}

/** `repos_root/<owner>/<repo>/.git`, when it is there. */
function sharedGitDirFor(repoDir: string): string | undefined {
  const dir = path.join(repoDir, '.git');
  return lstatIfPresent(dir)?.isDirectory() ? dir : undefined;
}

/**
 * The checkout's files cut at the file size limit (file-size-limit.ts). A
 * checkout git cannot read (no clone, not a worktree of it, git failed) has
 * none known: the run settles as it otherwise would, as it did when the
 * checkout could not be walked, and pv-publish, which reads it the same
 * way, fails on it rather than publish anything. Said in the log.
 */
async function cutFilesOrNone(inputs: Inputs, deps: RunPromptDeps, agentStartedMs: number): Promise<string[]> {
  const found = await filesCutAtSizeLimit({ repoDir: inputs.repoDir, workTree: inputs.checkoutDir }, deps.watcher.agent_max_file_bytes, agentStartedMs);
  if (found.checked) return found.files;
  const why = `files cut at ${deps.watcher.agent_max_file_bytes} bytes were not looked for: ${found.error.message}`;
  deps.log.warn(`${inputs.runId}: ${why}`);
  await fsp.appendFile(runFile(inputs.runRoot, 'log'), `pv-run-codex: ${new Date().toISOString()} ${why}\n`);
  return [];
}

/**
 * Which limits stopped something: the run's cgroup counters, the agent itself killed for its file
 * size, or a file of the checkout cut at the file size limit (file-size-limit.ts). The agent's
 * output is not read for this: the agent controls it.
 */
function limitsTripped(exit: AgentExit, cgroup: { processes: boolean; memory: boolean } | undefined, cutFiles: string[]): string[] {
  const tripped: string[] = [];
  if (cgroup?.processes) tripped.push('processes');
  if (cgroup?.memory) tripped.push('memory');
  if (exit.signal === 'SIGXFSZ' || cutFiles.length > 0) tripped.push('file_size');
  return tripped;
}

function limitMessage(tripped: string[], w: WatcherConfig, cutFiles: string[]): string {
  const limits = tripped.map((limit) => {
    if (limit === 'processes') return `${w.agent_max_processes} processes`;
    if (limit === 'memory') return `${w.agent_max_memory_bytes} bytes of memory`;
    return `${w.agent_max_file_bytes} bytes per file`;
  });
  // The cgroup's limits stop the run at once; a cut file is found when the agent has ended.
  const stopped = tripped.includes('processes') || tripped.includes('memory') ? ' and was stopped' : '';
  const shown = cutFiles.slice(0, 3).join(', ') + (cutFiles.length > 3 ? ` and ${cutFiles.length - 3} more` : '');
  const cut = cutFiles.length > 0 ? `; cut at that size, left in the checkout: ${shown}` : '';
  return `the agent hit its limit of ${limits.join(' and ')}${stopped} (watcher.agent_max_*)${cut}`;
}
