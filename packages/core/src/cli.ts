import yargs, { type Argv } from 'yargs';
import { loadConfig, type LoadedConfig } from './config.js';
import { EX, ToolError } from './exit.js';
import { createLogger, prepareColour, type Logger } from './log.js';
import { permissionLine } from './move.js';
import { readRecords, recordError, StepError, withError, writeRecord, type PvRecord } from './records.js';

/**
 * The frame every pv-* tool runs in. A tool exports `main(argv, io)` that
 * returns its exit status; its bin only sets `process.exitCode` (never
 * `process.exit()`, which can cut piped output short). Tests call `main`
 * with their own streams, or spawn the bin.
 */
export interface ToolIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export type ToolMain = (argv: string[], io?: Partial<ToolIO>) => Promise<number>;

export interface CommonArgs {
  config?: string;
  verbose?: boolean;
}

export interface ToolContext<A> {
  args: A & CommonArgs;
  io: ToolIO;
  log: Logger;
  /** load the configuration named by --config / PV_CONFIG (warnings are logged) */
  config(opts?: { allowMissing?: boolean }): LoadedConfig;
}

export interface ToolSpec<A> {
  /** `pv-resolve` */
  name: string;
  /** one line: what it does */
  summary: string;
  /** synopsis lines, e.g. `pv-resolve [--config FILE] < records` */
  usage: string;
  /** text after the options: input, output, exit status, example */
  epilogue: string;
  options?: (y: Argv<CommonArgs>) => Argv<A & CommonArgs>;
  run: (ctx: ToolContext<A>) => Promise<number | void>;
}

export const EXIT_STATUS_HELP = `Exit status:
  0   ran (records that failed carry an "error" field)
  64  bad command line        65  unreadable input
  69  a required program is missing
  70  internal error          75  temporary failure
  78  bad configuration`;

export function defineTool<A>(spec: ToolSpec<A>): ToolMain {
  return async (argv, partialIo = {}) => {
    const io: ToolIO = {
      stdin: partialIo.stdin ?? process.stdin,
      stdout: partialIo.stdout ?? process.stdout,
      stderr: partialIo.stderr ?? process.stderr,
      env: partialIo.env ?? process.env,
    };
    await prepareColour(io.stderr, io.env);
    let log = createLogger(spec.name, { stream: io.stderr, env: io.env });

    let base = yargs(argv)
      .scriptName(spec.name)
      .usage(`${spec.summary}\n\nUsage:\n  ${spec.usage}`)
      .option('config', {
        type: 'string',
        describe: 'config file (default: $PV_CONFIG, else /srv/prompt-valet/config/prompt-valet.yaml)',
      })
      .option('verbose', { alias: 'v', type: 'boolean', describe: 'log debug detail to stderr' })
      .epilogue(`${spec.epilogue.trim()}`)
      .strict()
      .help('help')
      .alias('help', 'h')
      .version(false)
      .wrap(Math.min(100, (io.stderr as { columns?: number }).columns ?? 100)) as unknown as Argv<CommonArgs>;
    const parser = spec.options ? spec.options(base) : (base as unknown as Argv<A & CommonArgs>);

    let parsed: (A & CommonArgs) | undefined;
    let output = '';
    let usageError: Error | undefined;
    try {
      parsed = (await parser.parseAsync(argv, {}, (err, _argv, out) => {
        if (err) usageError = err;
        output = out;
      })) as A & CommonArgs;
    } catch (err) {
      usageError = err as Error;
    }
    if (usageError) {
      io.stderr.write(`${spec.name}: ${usageError.message}\nTry '${spec.name} --help'.\n`);
      return EX.USAGE;
    }
    if (output) {
      // --help: the text goes to stdout, and the tool does nothing else.
      io.stdout.write(output + '\n');
      return EX.OK;
    }
    if (!parsed) return EX.USAGE;
    if (parsed.verbose) log = createLogger(spec.name, { stream: io.stderr, env: io.env, level: 'debug' });

    const ctx: ToolContext<A> = {
      args: parsed,
      io,
      log,
      config(opts = {}) {
        const loaded = loadConfig({ ...(parsed!.config ? { path: parsed!.config } : {}), env: io.env, ...opts });
        for (const w of loaded.warnings) log.warn(w);
        return loaded;
      },
    };
    try {
      const code = await spec.run(ctx);
      return code ?? EX.OK;
    } catch (err) {
      if (err instanceof ToolError) {
        log.error(err.message);
        return err.exitCode;
      }
      // Something an operator can cause and fix: one line, no stack trace.
      const line = permissionLine(err);
      if (line) {
        log.error(line);
        return EX.TEMPFAIL;
      }
      log.error(`internal error: ${(err as Error)?.stack ?? String(err)}`);
      return EX.SOFTWARE;
    }
  };
}

/** What a bin file does: run main on the process and set the exit code. */
export function runBin(main: ToolMain): void {
  // A reader that goes away (`pv-tree | head`) is not an error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exitCode = process.exitCode ?? 0;
    else throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`internal error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EX.SOFTWARE;
    },
  );
}

export interface MapRecordsOptions {
  /** also hand records that already carry an error to the handler (pv-settle) */
  includeFailed?: boolean;
}

/**
 * The loop of a step tool: read records, hand each one to `handle`, write
 * what it returns, in order. A record that already failed an earlier step
 * passes through untouched. A StepError thrown by the handler fails just that
 * record; anything else thrown is a bug, logged with its stack, and the
 * record carries code `internal`. One bad record never stops the stream.
 */
export async function mapRecords(
  ctx: ToolContext<unknown>,
  step: string,
  handle: (rec: PvRecord) => Promise<PvRecord>,
  opts: MapRecordsOptions = {},
): Promise<number> {
  for await (const rec of readRecords(ctx.io.stdin)) {
    let out: PvRecord;
    if (rec.error && !opts.includeFailed) {
      out = rec;
    } else {
      try {
        out = await handle(rec);
      } catch (err) {
        const error = stepErrorToRecord(step, err, ctx.log);
        // A step that handles failed records (pv-settle) and fails itself
        // must not hide the first failure.
        out = withError(rec, rec.error ? { ...error, cause: rec.error } : error);
      }
    }
    await writeRecord(ctx.io.stdout, out);
  }
  return EX.OK;
}

export function stepErrorToRecord(step: string, err: unknown, log?: Logger) {
  if (err instanceof StepError) return recordError(step, err.code, err.message, err.retryable, err.detail);
  const e = err as Error & { code?: unknown; retryable?: unknown; stderr?: unknown };
  if (e && typeof e.code === 'string' && typeof e.retryable === 'boolean') {
    return recordError(step, e.code, e.message, e.retryable, typeof e.stderr === 'string' && e.stderr ? e.stderr : undefined);
  }
  const line = permissionLine(err);
  if (line) return recordError(step, 'permission_denied', line, true);
  log?.error(`internal error: ${e?.stack ?? String(err)}`);
  return recordError(step, 'internal', `internal error in pv-${step}: ${e?.message ?? String(err)}`, false);
}
