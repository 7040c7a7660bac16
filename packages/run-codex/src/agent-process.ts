import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import { once } from 'node:events';
import { AGENT_MARKER_VAR } from './agent-env.js';
import { processesWithEnv, signalGroup, signalPids } from './process-sweep.js';
import { expectErrno } from '@prompt-valet/core';

/**
 * Running the agent under limits. The agent gets its own process group
 * (detached), its stdout and stderr are appended to the log as they arrive
 * (so `tail -f` follows a live run), and it is stopped — SIGTERM to the group
 * and to every process carrying the run's marker, SIGKILL after the grace
 * period — on the wall-clock limit, on silence longer than the idle limit,
 * when the ABORT file appears, when the run passes its token cap, or when
 * pv-run-codex itself is told to stop.
 * Whatever the agent leaves running after it exits is stopped the same way.
 */
export type StopReason = 'timeout' | 'idle_timeout' | 'abort_file' | 'shutdown' | 'resource_limit' | 'budget_exceeded';

export interface AgentLimits {
  timeoutMs: number;
  /** 0: no idle limit */
  idleTimeoutMs: number;
  killGraceMs: number;
}

export interface AgentRunOptions {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** written to the agent's stdin, which is then closed (codex waits for EOF) */
  input: string;
  logFile: string;
  /** when set, the agent's stdout (its JSON event stream) is also kept here */
  eventsFile?: string;
  abortFile: string;
  limits: AgentLimits;
  /** aborted when pv-run-codex gets SIGTERM or SIGINT */
  shutdown: AbortSignal;
  /** the value of AGENT_MARKER_VAR in `env` */
  marker: string;
  /** each complete line of stdout (for the JSON event stream) */
  onStdoutLine?: (line: string) => void;
  /**
   * Give the agent /dev/null in place of every descriptor we inherited (fd 9,
   * the claim lock, above all: with it the agent could release the claim).
   */
  blankInheritedFds?: boolean;
  /** descriptors given as /dev/null whatever blankInheritedFds says (the agent gate: never the agent's) */
  blankFds?: number[];
  /** polled with the other limits: true when the run's cgroup stopped something (a fork bomb, a memory hog) */
  limitTripped?: () => boolean;
  /** polled with the other limits: true once the run has used more tokens than its cap */
  overBudget?: () => boolean;
}

export interface AgentExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  stoppedFor?: StopReason;
  /** the agent could not be started at all (e.g. ENOENT) */
  spawnError?: NodeJS.ErrnoException;
  /** the end of stdout and stderr together, for reading codex's error lines */
  outputTail: string;
  /** processes still running after the agent exited, which had to be stopped */
  leftoversStopped: number;
}

const TAIL_BYTES = 64 * 1024;

export async function runAgent(opts: AgentRunOptions): Promise<AgentExit> {
  const started = Date.now();
  const log = fs.createWriteStream(opts.logFile, { flags: 'a' });
  const events = opts.eventsFile ? fs.createWriteStream(opts.eventsFile, { flags: 'a' }) : undefined;
  let tail = '';
  let lastOutput = Date.now();
  let stoppedFor: StopReason | undefined;
  let lineBuf = '';

  const blanks = [...(opts.blankInheritedFds ? inheritedFds() : []), ...(opts.blankFds ?? [])];
  const devNull = blanks.length > 0 ? fs.openSync('/dev/null', 'r') : undefined;
  const stdio: ('pipe' | 'ignore' | number)[] = ['pipe', 'pipe', 'pipe'];
  // libuv leaves an 'ignore' slot above 2 as it is (inherited): each to blank is filled, the others stay.
  for (let fd = 3; fd <= Math.max(2, ...blanks); fd++) stdio.push(devNull !== undefined && (opts.blankInheritedFds || blanks.includes(fd)) ? devNull : 'ignore');
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio,
  }) as ChildProcessWithoutNullStreams;
  if (devNull !== undefined) fs.closeSync(devNull);
  const pgid = child.pid;

  const record = (chunk: Buffer, isStdout: boolean) => {
    lastOutput = Date.now();
    log.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    if (isStdout) {
      events?.write(chunk);
      if (opts.onStdoutLine) {
        lineBuf += chunk.toString('utf8');
        const lines = lineBuf.split('\n');
        lineBuf = lines.pop() ?? '';
        for (const line of lines) opts.onStdoutLine(line);
      }
    }
  };
  child.stdout.on('data', (c: Buffer) => record(c, true));
  child.stderr.on('data', (c: Buffer) => record(c, false));
  // codex may exit before reading its input; a broken stdin pipe is not ours to report.
  child.stdin.on('error', () => {});
  child.stdin.end(opts.input);

  const killAll = (signal: NodeJS.Signals) => {
    if (pgid !== undefined) signalGroup(pgid, signal);
    signalPids(processesWithEnv(AGENT_MARKER_VAR, opts.marker), signal);
  };
  const graceTimers: NodeJS.Timeout[] = [];
  const stop = (reason: StopReason) => {
    if (stoppedFor) return;
    stoppedFor = reason;
    killAll('SIGTERM');
    graceTimers.push(setTimeout(() => killAll('SIGKILL'), opts.limits.killGraceMs));
  };

  const onShutdown = () => stop('shutdown');
  if (opts.shutdown.aborted) onShutdown();
  else opts.shutdown.addEventListener('abort', onShutdown, { once: true });

  // One poll covers the limits and the ABORT file: a watch on the run folder
  // would miss a file created by another host on a network share.
  const { timeoutMs, idleTimeoutMs } = opts.limits;
  const pollMs = Math.max(20, Math.min(250, idleTimeoutMs > 0 ? idleTimeoutMs / 5 : 250, timeoutMs / 5));
  const poll = setInterval(() => {
    const now = Date.now();
    if (now - started >= timeoutMs) stop('timeout');
    else if (idleTimeoutMs > 0 && now - lastOutput >= idleTimeoutMs) stop('idle_timeout');
    else if (fs.existsSync(opts.abortFile)) stop('abort_file');
    else if (opts.limitTripped?.()) stop('resource_limit');
    else if (opts.overBudget?.()) stop('budget_exceeded');
  }, pollMs);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: NodeJS.ErrnoException }>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const result = await exited;
  clearInterval(poll);
  opts.shutdown.removeEventListener('abort', onShutdown);
  const durationMs = Date.now() - started;

  const leftoversStopped = result.error ? 0 : await stopLeftovers(pgid, opts.marker, opts.limits.killGraceMs);
  for (const t of graceTimers) clearTimeout(t);

  // The pipes close once every holder is gone; bounded in case one escaped.
  if (!result.error) {
    await Promise.race([
      Promise.all([streamClosed(child.stdout), streamClosed(child.stderr)]),
      new Promise((resolve) => setTimeout(resolve, 2000).unref()),
    ]);
  }
  child.stdout.destroy();
  child.stderr.destroy();
  if (lineBuf && opts.onStdoutLine) opts.onStdoutLine(lineBuf);
  log.end();
  events?.end();
  await Promise.all([once(log, 'close'), events ? once(events, 'close') : undefined]);

  const exit: AgentExit = {
    exitCode: result.code,
    signal: result.signal,
    durationMs,
    outputTail: tail,
    leftoversStopped,
  };
  if (stoppedFor) exit.stoppedFor = stoppedFor;
  if (result.error) exit.spawnError = result.error;
  return exit;
}

function streamClosed(s: NodeJS.ReadableStream & { closed?: boolean }): Promise<void> {
  if (s.closed) return Promise.resolve();
  return once(s, 'close').then(() => undefined);
}

/**
 * After the agent exits: SIGTERM whatever of its group or marker is left,
 * wait up to the grace period for it to go, then SIGKILL. Returns how many
 * processes were still there.
 */
async function stopLeftovers(pgid: number | undefined, marker: string, graceMs: number): Promise<number> {
  const left = processesWithEnv(AGENT_MARKER_VAR, marker);
  if (pgid !== undefined) signalGroup(pgid, 'SIGTERM');
  if (left.length === 0) return 0;
  signalPids(left, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && processesWithEnv(AGENT_MARKER_VAR, marker).length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const still = processesWithEnv(AGENT_MARKER_VAR, marker);
  if (pgid !== undefined) signalGroup(pgid, 'SIGKILL');
  signalPids(still, 'SIGKILL');
  // SIGKILL cannot be ignored; wait (bounded) until the kernel has done it.
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && processesWithEnv(AGENT_MARKER_VAR, marker).length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return left.length;
}

/**
 * Our descriptors above 2 that a child would inherit (not close-on-exec):
 * what the shell pipeline handed us, such as the claim lock at fd 9.
 */
export function inheritedFds(): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/fdinfo');
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return [9];
  }
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    try {
      const flags = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      // O_CLOEXEC is 02000000 (octal) in fdinfo's flags.
      if (flags && (parseInt(flags[1]!, 8) & 0o2000000) === 0) found.push(fd);
    } catch (err) {
      expectErrno(err, 'ENOENT', 'EBADF');
      // closed meanwhile (the readdir's own descriptor, for one)
    }
  }
  return found;
}
