import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { locateTool, parseRecordLine, processesInGroup, type PvRecord } from '@prompt-valet/core';

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
 * sockets, which /dev/fd cannot open.) Everything stays in the one process
 * group that holds the claim.
 */
export function pipelineCommand(opts: { configPath?: string; env?: NodeJS.ProcessEnv }): string {
  const cfg = opts.configPath ? ` --config ${shellQuote(opts.configPath)}` : '';
  const tool = (name: string) => shellQuote(locateTool(name, { env: opts.env ?? process.env }));
  // --wait: pv-claim starts at once, then waits for the watcher's go line.
  const claim = `${tool('pv-claim')} --limit 1 --wait${cfg} 3>&-`;
  const rest = PIPELINE_STEPS.map((s) => `${tool(s)}${cfg} 3>&-`).join(' | ');
  const done = `printf '%s\\n' '${CLAIM_STEP_DONE}' >&3`;
  return (
    `${claim} | { ` +
    `if ! IFS= read -r line; then ${done}; exit 0; fi; ` +
    `printf '%s\\n' "$line" >&3; ${done}; ` +
    `{ printf '%s\\n' "$line"; exec cat; } 3>&- | ${rest}; }`
  );
}

export interface PipelineHandlers {
  /** the claim record, as soon as pv-claim made it */
  onClaim(rec: PvRecord): void;
  /** pv-claim found nothing to claim (and the pipeline is ending) */
  onNothingClaimed(): void;
  /** a record that came out of pv-settle */
  onSettled(rec: PvRecord): void;
  /** the whole pipeline is gone */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/**
 * One pipeline in a process group of its own (detached): the group is the
 * claim's holder (core `pipelineHolder`), and signals reach every step.
 */
export class Pipeline {
  readonly child: ChildProcess;
  readonly pgid: number;
  claim: PvRecord | undefined;
  private claimSeen = false;

  constructor(command: string, env: NodeJS.ProcessEnv, handlers: PipelineHandlers) {
    this.child = spawn('/bin/sh', ['-c', command], {
      detached: true,
      env,
      stdio: ['pipe', 'pipe', 'inherit', 'pipe'],
    });
    // A pipeline whose pv-claim is never told to go must not fail on EPIPE.
    this.child.stdin?.on('error', () => undefined);
    this.pgid = this.child.pid ?? -1;
    const claims = readline.createInterface({ input: this.child.stdio[3] as Readable, crlfDelay: Infinity });
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
    const settled = readline.createInterface({ input: this.child.stdout as Readable, crlfDelay: Infinity });
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
    this.child.on('exit', (code, signal) => {
      exited = [code, signal];
      finish();
    });
    this.child.on('error', () => {
      exited = [null, null];
      stdoutDone = true;
      finish();
    });
  }

  /** pv-claim (started with --wait) may look for a prompt now. */
  go(): void {
    this.child.stdin?.end('go\n');
  }

  /** pv-claim is not needed after all: it exits without claiming. */
  cancel(): void {
    this.child.stdin?.end();
  }

  /** Ask the running agent to stop (pv-run-codex settles it back to pending). */
  stopAgent(): number {
    let n = 0;
    for (const p of processesInGroup(this.pgid)) {
      if (p.cmdline.some((a) => /pv-run-codex(\.js)?$/.test(a))) {
        try {
          process.kill(p.pid, 'SIGTERM');
          n++;
        } catch {
          // already gone
        }
      }
    }
    return n;
  }

  /** Last resort: every process of the pipeline. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    try {
      process.kill(-this.pgid, signal);
    } catch {
      // already gone
    }
  }
}
