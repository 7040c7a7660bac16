import type { Argv } from 'yargs';
import { loadConfig, type LoadedConfig } from './config.js';
import { PvError } from './errors.js';
import { EX, ToolError } from './exit.js';
import { createLogger, prepareColour, type Logger } from './log.js';
import { permissionLine } from './move.js';
import { DEFAULT_MAX_RECORD_BYTES, readRecords, recordError, withError, writeRecord, type PvRecord, type RecordError } from './records.js';

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
  /** the configuration config() loaded last (mapRecords takes its limits from it) */
  loaded?: LoadedConfig;
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

    // Most runs are a pipeline step started with plain options: parse those
    // without loading yargs (a fifth of a tool's start-up). --help, errors
    // and anything unusual go through yargs, which stays the reference.
    const parsed = parseSimpleArgs<A>(argv, spec) ?? (await parseWithYargs<A>(argv, spec, io));
    if (typeof parsed === 'number') return parsed;
    if (parsed.verbose) log = createLogger(spec.name, { stream: io.stderr, env: io.env, level: 'debug' });

    const ctx: ToolContext<A> = {
      args: parsed,
      io,
      log,
      config(opts = {}) {
        const loaded = loadConfig({ ...(parsed.config ? { path: parsed.config } : {}), env: io.env, ...opts });
        for (const w of loaded.warnings) log.warn(w);
        ctx.loaded = loaded;
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
      // A stack trace is several lines; the logger writes one per call.
      for (const line of `internal error: ${(err as Error)?.stack ?? String(err)}`.split('\n')) log.error(line);
      return EX.SOFTWARE;
    }
  };
}

const COMMON_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', describe: 'config file (default: $PV_CONFIG, else /srv/prompt-valet/config/prompt-valet.yaml)' },
  verbose: { alias: 'v', type: 'boolean', describe: 'log debug detail to stderr' },
};

/** The subset of a yargs option this module understands without yargs. */
interface OptionSpec {
  type?: unknown;
  describe?: unknown;
  default?: unknown;
  alias?: unknown;
}

/** A yargs `.check(fn)`: true when the parsed options are acceptable. */
type OptionCheck = (argv: Record<string, unknown>) => unknown;

/**
 * The options a tool's builder declares, recorded by running the builder on
 * a stand-in that only understands `.option(name, spec)` and `.check(fn)`.
 * Undefined when the builder uses anything else (then yargs parses).
 */
function declaredOptions<A>(spec: ToolSpec<A>): { options: Map<string, OptionSpec>; checks: OptionCheck[] } | undefined {
  const options = new Map<string, OptionSpec>(Object.entries(COMMON_OPTIONS));
  const checks: OptionCheck[] = [];
  if (!spec.options) return { options, checks };
  let understood = true;
  const recorder: object = new Proxy(
    {},
    {
      get(_target, prop) {
        if (prop === 'option') {
          return (name: string, opt: OptionSpec) => {
            options.set(name, opt);
            return recorder;
          };
        }
        if (prop === 'check') {
          return (check: OptionCheck) => {
            checks.push(check);
            return recorder;
          };
        }
        understood = false;
        return () => recorder;
      },
    },
  );
  spec.options(recorder as Argv<CommonArgs>);
  return understood ? { options, checks } : undefined;
}

const camelCase = (name: string) => name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * Parse `--name value`, `--name=value`, `--flag` and `-v` for string,
 * number and boolean options, as yargs would (numbers through Number(),
 * both the dashed and the camelCase key). Anything else — `--help`, an
 * unknown option, a positional word, an array option, a missing value —
 * returns undefined so that yargs parses it and reports it in its words. So
 * does a value a `.check` of the tool refuses (pv-tree's --concurrency 0).
 */
export function parseSimpleArgs<A>(argv: string[], spec: ToolSpec<A>): (A & CommonArgs) | undefined {
  const declared = declaredOptions(spec);
  if (!declared) return undefined;
  const { options, checks } = declared;
  const out: Record<string, unknown> = { _: [], $0: spec.name };
  const set = (name: string, value: unknown) => {
    out[name] = value;
    out[camelCase(name)] = value;
  };
  for (const [name, opt] of options) {
    if (Object.keys(opt).some((k) => !['type', 'describe', 'default', 'alias'].includes(k))) return undefined;
    if (opt.type !== 'string' && opt.type !== 'number' && opt.type !== 'boolean') return undefined;
    if (opt.default !== undefined) set(name, opt.default);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else if (/^-[a-z]$/i.test(arg)) {
      const found = [...options].find(([, o]) => o.alias === arg.slice(1));
      if (!found) return undefined;
      name = found[0];
    } else {
      return undefined;
    }
    const opt = options.get(name);
    if (!opt) return undefined;
    if (opt.type === 'boolean') {
      if (inline === undefined) set(name, true);
      else if (inline === 'true' || inline === 'false') set(name, inline === 'true');
      else return undefined;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('-') && opt.type !== 'number')) return undefined;
    set(name, opt.type === 'number' ? Number(value) : value);
  }
  if (out.verbose !== undefined) out.v = out.verbose;
  for (const check of checks) {
    try {
      if (check(out) !== true) return undefined;
    } catch (err) {
      // yargs runs it again and words the refusal; this path only declines.
      if (!(err instanceof Error)) throw err;
      return undefined;
    }
  }
  return out as A & CommonArgs;
}

/** yargs: help, usage errors and every case parseSimpleArgs leaves to it. A number is the exit status to return. */
async function parseWithYargs<A>(argv: string[], spec: ToolSpec<A>, io: ToolIO): Promise<(A & CommonArgs) | number> {
  const { default: yargs } = await import('yargs');
  const base = yargs(argv)
    .scriptName(spec.name)
    .usage(`${spec.summary}\n\nUsage:\n  ${spec.usage}`)
    .option('config', COMMON_OPTIONS.config as { type: 'string'; describe: string })
    .option('verbose', COMMON_OPTIONS.verbose as { alias: 'v'; type: 'boolean'; describe: string })
    .epilogue(`${spec.epilogue.trim()}`)
    .strict()
    .help('help')
    .alias('help', 'h')
    .version(false)
    // No wrapping: the epilogues are laid out by hand (examples must not be cut).
    .wrap(null) as unknown as Argv<CommonArgs>;
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
  return parsed ?? EX.USAGE;
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
 * passes through untouched. A PvError (StepError, GitError, …) thrown by the handler fails just that
 * record; anything else thrown is a bug, logged with its stack, and the
 * record carries code `internal`. One bad record never stops the stream.
 */
export async function mapRecords(
  ctx: ToolContext<unknown>,
  step: string,
  handle: (rec: PvRecord) => Promise<PvRecord>,
  opts: MapRecordsOptions = {},
): Promise<number> {
  const maxLineBytes = ctx.loaded?.config.limits.max_record_bytes ?? DEFAULT_MAX_RECORD_BYTES;
  for await (const rec of readRecords(ctx.io.stdin, { maxLineBytes })) {
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

/**
 * The record error for what a step threw: a PvError keeps its code,
 * retryable and detail; a bare permission errno becomes one line an operator
 * can act on; anything else is a bug (code `internal`, its stack logged).
 */
export function stepErrorToRecord(step: string, err: unknown, log?: Logger): RecordError {
  if (err instanceof PvError) return recordError(step, err.code, err.message, err.retryable, err.detail);
  const line = permissionLine(err);
  if (line) return recordError(step, 'permission_denied', line, true);
  const e = err instanceof Error ? err : undefined;
  log?.error(`internal error: ${e?.stack ?? String(err)}`);
  return recordError(step, 'internal', `internal error in pv-${step}: ${e?.message ?? String(err)}`, false);
}
