import * as path from 'node:path';
import type { ServerResponse } from 'node:http';
import { FINAL_RUN_STATES, newFileTail, readAppendedLines, readRunStatus, RUN_FILES } from '@prompt-valet/core';

/**
 * Server-Sent Events that follow a run's `agent.log` as it grows:
 *
 *   event: log     data: one line of the log per `data:` line; id: byte offset after it
 *   event: state   data: {"state":"running"}  whenever the run's state changes
 *   event: end     data: {"state":"done"}     the run reached a final state; the stream ends
 *
 * The file is polled (a stat every `pollMs`): agent.log may not exist yet
 * when the stream starts, and a poll costs one stat per open stream.
 * A client that reconnects sends Last-Event-ID and resumes at that offset.
 */
export interface LiveLogOptions {
  runRoot: string;
  /** byte offset to start from */
  from: number;
  pollMs: number;
  /** a comment line this often keeps proxies from closing an idle stream */
  heartbeatMs: number;
  /** the longest chunk read per poll */
  chunkBytes?: number;
}

function event(name: string, data: string, id?: number): string {
  const lines = data.split('\n').map((l) => `data: ${l}`).join('\n');
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${name}\n${lines}\n\n`;
}

export async function streamLog(res: ServerResponse, opts: LiveLogOptions, closed: () => boolean): Promise<void> {
  const logFile = path.join(opts.runRoot, RUN_FILES.log);
  const chunkBytes = opts.chunkBytes ?? 256 * 1024;
  const tail = newFileTail(opts.from);
  let lastState: string | undefined;
  let lastBeat = Date.now();
  const write = (s: string) => {
    if (!closed()) res.write(s);
  };

  const readNew = async (): Promise<void> => {
    for (let got = await readAppendedLines(logFile, tail, chunkBytes); got; got = await readAppendedLines(logFile, tail, chunkBytes)) {
      write(event('log', got.text, got.end));
    }
  };

  while (!closed()) {
    // Read the state before the log: a final state seen now means the log
    // read right after it is complete.
    const st = await readRunStatus(opts.runRoot).catch(() => undefined);
    await readNew();
    if (st && st.state !== lastState) {
      lastState = st.state;
      write(event('state', JSON.stringify({ state: st.state })));
    }
    if (st && FINAL_RUN_STATES.has(st.state)) {
      if (tail.partial.length > 0) write(event('log', tail.partial.toString('utf8'), tail.offset));
      write(event('end', JSON.stringify({ state: st.state })));
      return;
    }
    if (Date.now() - lastBeat >= opts.heartbeatMs) {
      write(': keep-alive\n\n');
      lastBeat = Date.now();
    }
    await new Promise((r) => setTimeout(r, opts.pollMs));
  }
}
