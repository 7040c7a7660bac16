import * as fs from 'node:fs';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { AGENT_GATE_ENV, AGENT_GATE_GO, agentGateLine, expectErrno, type Logger } from '@prompt-valet/core';

/**
 * pv-run-codex's side of the agent gate (core agent-gate.ts; docs/lifecycle.md,
 * "Agent slots"): before an agent starts, ask pv-watcher for one of its
 * watcher.max_parallel slots and wait for it; once the agent has ended, give
 * it back. Without PV_AGENT_GATE_FD (a pipeline typed by hand, a test,
 * pv-queue's workers) there is no gate and every agent starts at once.
 */
export type SlotAnswer = 'go' | 'refused' | 'shutdown';

export class AgentSlots {
  private readonly lines: AsyncIterator<string>;
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    // pv-watcher gone while we write: the answer we wait for is then the gate's end.
    socket.on('error', () => undefined);
    this.lines = readline.createInterface({ input: socket, crlfDelay: Infinity })[Symbol.asyncIterator]();
  }

  /**
   * The gate named by PV_AGENT_GATE_FD, or undefined when there is none. A
   * descriptor that is not a socket is not a gate (the variable leaked into
   * a shell, say): said once, and agents start at once.
   */
  static fromEnv(env: NodeJS.ProcessEnv, log: Logger): AgentSlots | undefined {
    const named = env[AGENT_GATE_ENV];
    if (named === undefined || named === '') return undefined;
    const fd = Number(named);
    let isSocket = false;
    if (Number.isInteger(fd) && fd > 2) {
      try {
        isSocket = fs.fstatSync(fd).isSocket();
      } catch (err) {
        expectErrno(err, 'EBADF');
      }
    }
    if (!isSocket) {
      log.warn(`${AGENT_GATE_ENV}=${named} names no open socket: agents start without waiting for a slot`);
      return undefined;
    }
    return new AgentSlots(new net.Socket({ fd, readable: true, writable: true }));
  }

  /**
   * Ask for a slot for `runId` and wait: 'go' once pv-watcher grants it,
   * 'refused' when the gate closes first (the watcher is stopping, or died),
   * 'shutdown' when `shutdown` is aborted first (SIGTERM).
   */
  async acquire(runId: string, shutdown: AbortSignal): Promise<SlotAnswer> {
    if (this.closed) return 'refused';
    if (shutdown.aborted) return 'shutdown';
    this.socket.write(agentGateLine({ gate: 'wait', run_id: runId }));
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'shutdown'>((resolve) => {
      onAbort = () => resolve('shutdown');
      shutdown.addEventListener('abort', onAbort, { once: true });
    });
    try {
      for (;;) {
        const next = await Promise.race([this.lines.next(), aborted]);
        if (next === 'shutdown') {
          // A go may be on its way: done tells the watcher to free it or forget the wait.
          this.release(runId);
          return 'shutdown';
        }
        if (next.done) {
          this.closed = true;
          return 'refused';
        }
        if (next.value.trim() === AGENT_GATE_GO) return 'go';
      }
    } finally {
      if (onAbort) shutdown.removeEventListener('abort', onAbort);
    }
  }

  /** The agent of `runId` has ended: the slot is free for the next run. */
  release(runId: string): void {
    if (!this.closed) this.socket.write(agentGateLine({ gate: 'done', run_id: runId }));
  }

  /** No more records: our end closes (the process exiting would close it too). */
  close(): void {
    this.closed = true;
    this.socket.end();
    this.socket.destroySoon();
  }
}
