import type { ChalkInstance } from 'chalk';
import { format } from 'node:util';
import { escapeForDisplay } from './display.js';

/**
 * Logging for people, on stderr only (stdout carries records). Each call
 * writes one line, prefixed with the tool's name. Colour only when stderr is a TTY and
 * NO_COLOR is unset. Under journald (JOURNAL_STREAM set) each line starts with
 * its syslog priority, `<3>` … `<7>`, so `journalctl -p err` filters it.
 */
export type LogLevel = 'error' | 'warn' | 'notice' | 'info' | 'debug';

const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, notice: 5, info: 6, debug: 7 };

export interface Logger {
  error(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  notice(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  readonly tool: string;
}

export interface LoggerOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
  /** lowest level written; default from PV_LOG_LEVEL, else info */
  level?: LogLevel;
}

function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return !env.JOURNAL_STREAM && Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb';
}

let colourChalk: ChalkInstance | undefined;

/**
 * Load chalk when this stream will show colour. Kept out of the import
 * path: in a pipeline or under systemd nothing is coloured, and every
 * process start-up counts. Loggers made before this call do not colour.
 */
export async function prepareColour(stream: { isTTY?: boolean } = process.stderr, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!colourChalk && wantsColour(stream, env)) {
    const { Chalk } = await import('chalk');
    colourChalk = new Chalk({ level: 1 });
  }
}

export function createLogger(tool: string, opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const env = opts.env ?? process.env;
  const journald = Boolean(env.JOURNAL_STREAM);
  const chalk = wantsColour(stream, env) ? colourChalk : undefined;
  const plain = (s: string) => s;
  const envLevel = env.PV_LOG_LEVEL as LogLevel | undefined;
  const threshold = PRIORITY[opts.level ?? (envLevel && envLevel in PRIORITY ? envLevel : 'info')];
  const paint: Record<LogLevel, (s: string) => string> = {
    error: chalk?.red ?? plain,
    warn: chalk?.yellow ?? plain,
    notice: chalk?.cyan ?? plain,
    info: plain,
    debug: chalk?.dim ?? plain,
  };

  // One call, one line: messages carry names from outside (file and folder
  // names, git's stderr), so a line break or an escape sequence in one is
  // shown escaped, never obeyed by the terminal or taken by journald as a
  // second entry. Text of several lines is logged one call per line.
  const write = (level: LogLevel, args: unknown[]) => {
    if (PRIORITY[level] > threshold) return;
    const body = `${tool}: ${level === 'error' || level === 'warn' ? `${level}: ` : ''}${escapeForDisplay(format(...args))}`;
    stream.write(`${journald ? `<${PRIORITY[level]}>${body}` : paint[level](body)}\n`);
  };

  return {
    tool,
    error: (...a) => write('error', a),
    warn: (...a) => write('warn', a),
    notice: (...a) => write('notice', a),
    info: (...a) => write('info', a),
    debug: (...a) => write('debug', a),
  };
}
