import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Argv } from 'yargs';
import { defineTool, parseSimpleArgs, type CommonArgs } from '../src/cli.js';
import { EX } from '../src/exit.js';

function harness() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const io = { stdin: Readable.from([]), stdout, stderr, env: {} as NodeJS.ProcessEnv };
  const text = { out: '', err: '' };
  stdout.on('data', (c) => (text.out += c));
  stderr.on('data', (c) => (text.err += c));
  return { io, text };
}

const tool = defineTool<{ limit?: number }>({
  name: 'pv-demo',
  summary: 'Demonstrates the frame.',
  usage: 'pv-demo [--limit N]',
  epilogue: 'Example:\n  pv-demo --limit 3',
  options: (y) => y.option('limit', { type: 'number', describe: 'at most N' }),
  async run(ctx) {
    const { config } = ctx.config();
    ctx.io.stdout.write(JSON.stringify({ v: 1, limit: ctx.args.limit ?? null, inbox: config.inbox }) + '\n');
  },
});

t.test('--help prints synopsis and example on stdout, exit 0', async (t) => {
  const { io, text } = harness();
  t.equal(await tool(['--help'], io), 0);
  t.match(text.out, /Demonstrates the frame/);
  t.match(text.out, /pv-demo \[--limit N\]/);
  t.match(text.out, /--config/);
  t.match(text.out, /Example:/);
  t.equal(text.err, '');
});

t.test('an unknown option is a usage error: exit 64, one line naming it', async (t) => {
  const { io, text } = harness();
  t.equal(await tool(['--bogus'], io), EX.USAGE);
  t.match(text.err, /^pv-demo: Unknown argument: bogus\n/);
  t.equal(text.out, '');
});

t.test('a bad config is one clear line and exit 78', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, 'watcher:\n  max_parallel: lots\n');
  const { io, text } = harness();
  t.equal(await tool(['--config', cfg], io), EX.CONFIG);
  const lines = text.err.trim().split('\n');
  t.equal(lines.length, 1, 'one line, no stack trace');
  t.match(lines[0], /watcher\.max_parallel: got string "lots", expected a whole number from 1 to 64/);
});

t.test('PV_CONFIG is used when --config is absent; relative paths are anchored at the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, 'inbox: ./in\n');
  const { io, text } = harness();
  io.env = { PV_CONFIG: cfg };
  t.equal(await tool(['--limit', '2'], io), 0);
  t.same(JSON.parse(text.out), { v: 1, limit: 2, inbox: path.join(dir, 'in') });
});

t.test('plain command lines parse without yargs exactly as yargs parses them', async (t) => {
  const { default: yargs } = await import('yargs');
  interface Args { limit?: number; 'dry-run'?: boolean; inbox?: string; wait?: boolean }
  const spec = {
    name: 'pv-demo',
    summary: 's',
    usage: 'u',
    epilogue: 'e',
    options: (y: import('yargs').Argv<{ config?: string; verbose?: boolean }>) =>
      y
        .option('limit', { type: 'number', describe: 'n' })
        .option('dry-run', { type: 'boolean', describe: 'b' })
        .option('inbox', { type: 'string', describe: 's' })
        .option('wait', { type: 'boolean', default: false, describe: 'w' }),
    async run() {},
  };
  const reference = (argv: string[]) =>
    spec
      .options(
        yargs(argv)
          .option('config', { type: 'string' })
          .option('verbose', { alias: 'v', type: 'boolean' })
          .strict() as unknown as import('yargs').Argv<{ config?: string; verbose?: boolean }>,
      )
      .parseSync();
  const cases = [
    [],
    ['--limit', '1'],
    ['--limit=2', '--dry-run'],
    ['--config', '/x/y.yaml', '--wait', '-v'],
    ['--inbox=/srv/in box', '--dry-run=false', '--verbose'],
    ['--limit', 'abc'],
  ];
  for (const argv of cases) {
    const fast = parseSimpleArgs<Args>(argv, spec);
    t.ok(fast, `${JSON.stringify(argv)} takes the fast path`);
    const ref = reference(argv) as Record<string, unknown>;
    for (const key of Object.keys(ref).filter((k) => k !== '$0')) {
      t.same((fast as Record<string, unknown>)[key], ref[key], `${JSON.stringify(argv)}: ${key}`);
    }
  }
  // Left to yargs (help, errors, positionals, unknown options, a missing value).
  for (const argv of [['--help'], ['-h'], ['--nope'], ['word'], ['--limit'], ['--inbox', '--wait'], ['--wait=maybe']]) {
    t.equal(parseSimpleArgs<Args>(argv, spec), undefined, `${JSON.stringify(argv)} goes to yargs`);
  }
});

t.test('a tool with a .check still takes the fast path; a value the check refuses gets the words of yargs', async (t) => {
  type Args = { workers?: number };
  const checked = {
    name: 'pv-demo',
    summary: 'Demonstrates a check.',
    usage: 'pv-demo [--workers N]',
    epilogue: '',
    options: (y: Argv<CommonArgs>) =>
      y.option('workers', { type: 'number', describe: 'at once' }).check((a) => {
        if (a.workers !== undefined && (!Number.isInteger(a.workers) || a.workers < 1)) throw new Error('--workers must be a whole number >= 1');
        return true;
      }),
    async run() {},
  };
  t.match(parseSimpleArgs<Args>(['--workers', '3'], checked), { workers: 3 }, 'accepted by the check: parsed without yargs');
  t.equal(parseSimpleArgs<Args>(['--workers', '0'], checked), undefined, 'refused by the check: left to yargs');
  const { io, text } = harness();
  t.equal(await defineTool<Args>(checked)(['--workers', '0'], io), EX.USAGE);
  t.match(text.err, /^pv-demo: --workers must be a whole number >= 1\n/);
});

t.test('a command line the fast path declines still gets the usage error of yargs', async (t) => {
  const { io, text } = harness();
  t.equal(await tool(['--limit', '2', '--nope'], io), EX.USAGE);
  t.match(text.err, /^pv-demo: Unknown argument: nope\nTry 'pv-demo --help'/);
});
