import { PvError } from './errors.js';

/**
 * Exit statuses (sysexits.h). They describe the tool, never the records:
 * a tool that ran exits 0 even when some records carry errors.
 */
export const EX = {
  OK: 0,
  /** the command line was wrong */
  USAGE: 64,
  /** the input could not be read as records */
  DATAERR: 65,
  /** an input file does not exist */
  NOINPUT: 66,
  /** a program the tool needs is missing */
  UNAVAILABLE: 69,
  /** a bug in the tool */
  SOFTWARE: 70,
  /** the system could not do it (disk, permission) */
  OSERR: 71,
  /** try again later */
  TEMPFAIL: 75,
  /** the configuration is wrong */
  CONFIG: 78,
} as const;

export type ExitCode = (typeof EX)[keyof typeof EX];

/** An error a tool reports to a person on stderr and ends with `exitCode`. */
export class ToolError extends PvError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.exitCode = exitCode;
  }
}
