import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import type { Duplex, Readable } from 'node:stream';
import {
  expectErrno,
  AGENT_GATE_ENV,
  AGENT_GATE_FD,
  AGENT_GATE_GO,
  parseAgentGateLine,
  CLAIM_LOCK_ENV,
  CLAIM_LOCK_FD,
  claimLockPath,
  locateTool,
  newLockId,
  parseRecordLine,
  takeLock,
  type PvRecord,
} from '@prompt-valet/core';

/** The steps after the claim, in order. pv-watcher holds no job logic: these tools do it all. */
export const PIPELINE_STEPS = ['pv-resolve', 'pv-clone', 'pv-run-codex', 'pv-publish', 'pv-settle'] as const;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const CLAIM_STEP_DONE = '{"v":1,"claim_step":"done"}';

/**
 * The pipeline as one shell command, the same a person would type:
 *
 *   pv-claim --limit 1 | pv-resolve | pv-clone | pv-run-codex | pv-publish | pv-settle
 *
 * with two additions. The later steps start only once pv-claim has claimed
 * something: an empty inbox (every rescan, most events) costs one process,
 * not six, and pv-claim does not share the CPU with five other start-ups
 * while it claims. And the claim record is also copied to fd 3, which hands
 * it to the watcher at once, so it can start the next pipeline without
 * waiting for this one to finish; `{"claim_step":"done"}` on fd 3 says the
 * claim step is over. (`tee /dev/fd/3` cannot do it: Node's pipes are
 * sockets, which /dev/fd cannot open.) Every step inherits fd 9, the claim
 * lock (see Pipeline). Only pv-run-codex gets fd 4, the agent gate
 * (core agent-gate.ts), and PV_AGENT_GATE_FD naming it; the other steps
 * have it closed, so none can take or free an agent slot.
 */
export function pipelineCommand(opts: { configPath?: string; env?: NodeJS.ProcessEnv; dispatch?: 'local' | 'nats' }): string {
  const cfg = opts.configPath ? ` --config ${shellQuote(opts.configPath)}` : '';
  const tool = (name: string) => shellQuote(locateTool(name, { env: opts.env ?? process.env }));
  // --wait: pv-claim starts at once, then waits for the watcher's go line.
  const noGate = `${AGENT_GATE_FD}>&-`;
  const claim = `${tool('pv-claim')} --limit 1 --wait${cfg} 3>&- ${noGate}`;
  // dispatch: nats: the costly steps run on workers; pv-settle here only settles what could not be queued.
  const steps = opts.dispatch === 'nats' ? ['pv-resolve', 'pv-queue send jobs', 'pv-settle'] : PIPELINE_STEPS;
  const rest = steps
    .map((s) => {
      const [name, ...args] = s.split(' ');
      const command = `${tool(name!)}${args.length ? ` ${args.join(' ')}` : ''}${cfg} 3>&-`;
      return name === 'pv-run-codex' ? `${AGENT_GATE_ENV}=${AGENT_GATE_FD} ${command}` : `${command} ${noGate}`;
    })
    .join(' | ');
  const done = `printf '%s\\n' '${CLAIM_STEP_DONE}' >&3`;
  return (
    `${claim} | { ` +
    `if ! IFS= read -r line; then ${done}; exit 0; fi; ` +
    `printf '%s\\n' "$line" >&3; ${done}; ` +
    `{ printf '%s\\n' "$line"; exec cat; } 3>&- ${noGate} | ${rest}; }`
  );
}

export interface PipelineHandlers {
  /** the claim record, as soon as pv-claim made it */
  onClaim(rec: PvRecord): void;
  /** pv-claim found nothing to claim (and the pipeline is ending) */
  onNothingClaimed(): void;
  /** a record that came out of pv-settle */
  onSettled(rec: PvRecord): void;
  /** pv-run-codex asks for an agent slot before it starts the agent of run `runId` */
  onAgentWait(runId: string): void;
  /** the agent ended, or pv-run-codex no longer waits: it said done, or the gate closed */
  onAgentDone(): void;
  /** the whole pipeline is gone */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/** What the Scheduler needs of a pipeline; tests give it fakes. */
export interface PipelineLike {
  /** the claim record, once pv-claim made one */
  readonly claim: PvRecord | undefined;
  /** the id of the claim lock this pipeline holds */
  readonly lockId: string;
  /** let pv-claim look; `hint`: the prompt a file event named (relative to the inbox), tried before the walk */
  go(hint?: string): void;
  cancel(): void;
  /** the agent may start: the slot is this pipeline's until onAgentDone */
  grantAgent(): void;
  /** the agent must not start (the watcher is stopping): pv-run-codex ends the run as a shutdown does */
  refuseAgent(): void;
  stopAgent(): number;
  kill(signal?: NodeJS.Signals): void;
}

export type PipelineFactory = (handlers: PipelineHandlers) => PipelineLike;

/**
 * One pipeline in a process group of its own (detached, so signals reach
 * every step), holding a claim lock of its own (docs/lifecycle.md, "The
 * claim lock"): the watcher creates `processed/.ledger/locks/<id>.lock`,
 * locks it, hands the locked descriptor to the shell as fd 9 with
 * PV_CLAIM_LOCK=<id>, and closes its own. Every step inherits fd 9, so the
 * lock, and with it the claim, lives exactly as long as some step does.
 * Fd 4 is the agent gate: a socketpair (Node's 'pipe' stdio) whose other end
 * the watcher reads pv-run-codex's wait and done lines from and answers go on.
 */
export class Pipeline implements PipelineLike {
  child: ChildProcess | undefined;
  claim: PvRecord | undefined;
  readonly lockId = newLockId();
  private claimSeen = false;
  /** go/cancel asked for before the shell was started */
  private early: { go: true; hint?: string } | { go: false } | undefined;
  private killed: NodeJS.Signals | undefined;
  /** our end of the agent gate (fd 4 of the pipeline) */
  private gate: Duplex | undefined;

  constructor(
    command: string,
    env: NodeJS.ProcessEnv,
    processed: string,
    private readonly handlers: PipelineHandlers,
  ) {
    void this.start(command, env, processed).catch((err: unknown) => {
      process.stderr.write(`pv-watcher: cannot start a pipeline: ${(err as Error).message}\n`);
      this.handlers.onNothingClaimed();
      this.handlers.onExit(null, null);
    });
  }

  private async start(command: string, env: NodeJS.ProcessEnv, processed: string): Promise<void> {
    const lock = await takeLock(claimLockPath(processed, this.lockId));
    if (!lock) throw new Error(`the fresh claim lock ${this.lockId} is busy`);
    const stdio: StdioOptions = ['pipe', 'pipe', 'inherit', 'pipe'];
    while (stdio.length < AGENT_GATE_FD) stdio.push('ignore');
    stdio.push('pipe');
    while (stdio.length < CLAIM_LOCK_FD) stdio.push('ignore');
    stdio.push(lock.fd);
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', command], { detached: true, env: { ...env, [CLAIM_LOCK_ENV]: this.lockId }, stdio });
    } finally {
      // The shell has its copy; from now on the pipeline alone holds the lock.
      await lock.release();
    }
    this.child = child;
    this.wire(child);
    if (this.killed) this.kill(this.killed);
    else if (this.early?.go) this.go(this.early.hint);
    else if (this.early) this.cancel();
  }

  private wire(child: ChildProcess): void {
    const handlers = this.handlers;
    // A pipeline whose pv-claim is never told to go must not fail on EPIPE.
    child.stdin?.on('error', () => undefined);
    const claims = readline.createInterface({ input: child.stdio[3] as Readable, crlfDelay: Infinity });
    claims.on('line', (line) => {
      if (line.trim() === '' || this.claimSeen) return;
      const rec = parseRecordLine(line);
      this.claimSeen = true;
      if (rec.claim_step === 'done') {
        handlers.onNothingClaimed();
        return;
      }
      this.claim = rec;
      handlers.onClaim(rec);
    });
    claims.on('close', () => {
      if (!this.claimSeen) {
        this.claimSeen = true;
        handlers.onNothingClaimed();
      }
    });
    this.wireAgentGate(child.stdio[AGENT_GATE_FD] as Duplex);
    const settled = readline.createInterface({ input: child.stdout as Readable, crlfDelay: Infinity });
    settled.on('line', (line) => {
      if (line.trim() !== '') handlers.onSettled(parseRecordLine(line));
    });
    let exited: [number | null, NodeJS.Signals | null] | undefined;
    let stdoutDone = false;
    const finish = () => {
      if (exited && stdoutDone) handlers.onExit(exited[0], exited[1]);
    };
    settled.on('close', () => {
      stdoutDone = true;
      finish();
    });
    child.on('exit', (code, signal) => {
      exited = [code, signal];
      finish();
    });
    child.on('error', () => {
      exited = [null, null];
      stdoutDone = true;
      finish();
    });
  }

  private wireAgentGate(gate: Duplex): void {
    this.gate = gate;
    // pv-run-codex gone while the watcher answers: its slot is freed by the close below.
    gate.on('error', () => undefined);
    const lines = readline.createInterface({ input: gate, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const message = parseAgentGateLine(line);
      if (message?.gate === 'wait') this.handlers.onAgentWait(message.run_id);
      else if (message?.gate === 'done') this.handlers.onAgentDone();
    });
    lines.on('close', () => this.handlers.onAgentDone());
  }

  grantAgent(): void {
    this.gate?.write(`${AGENT_GATE_GO}\n`);
  }

  /** Closing our end: pv-run-codex reads the end of the gate before go. */
  refuseAgent(): void {
    this.gate?.destroy();
  }

  /** pv-claim (started with --wait) may look for a prompt now, trying `hint` first. */
  go(hint?: string): void {
    if (!this.child) this.early = { go: true, hint };
    else this.child.stdin?.end(hint === undefined ? 'go\n' : `go ${hint}\n`);
  }

  /** pv-claim is not needed after all: it exits without claiming. */
  cancel(): void {
    if (!this.child) this.early = { go: false };
    else this.child.stdin?.end();
  }

  /** Ask the running agent to stop (pv-run-codex settles it back to pending). */
  stopAgent(): number {
    if (!this.child?.pid) return 0;
    let n = 0;
    for (const p of processesInGroup(this.child.pid)) {
      if (p.cmdline.some((a) => /pv-run-codex(\.js)?$/.test(a))) {
        try {
          process.kill(p.pid, 'SIGTERM');
          n++;
        } catch (err) {
          expectErrno(err, 'ESRCH');
          // already gone
        }
      }
    }
    return n;
  }

  /** Last resort: every process of the pipeline. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.child?.pid) {
      this.killed = signal;
      return;
    }
    try {
      process.kill(-this.child.pid, signal);
    } catch (err) {
      expectErrno(err, 'ESRCH');
      // already gone
    }
  }
}

/** Live (non-zombie) processes of group `pgid`, with their command lines. */
function processesInGroup(pgid: number): { pid: number; cmdline: string[] }[] {
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 2 (the command) may hold spaces and parentheses: split after the last ")".
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) !== pgid || rest[0] === 'Z' || rest[0] === 'X') continue;
      out.push({ pid: Number(entry), cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean) });
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ESRCH');
      continue; // exited meanwhile
    }
  }
  return out;
}
