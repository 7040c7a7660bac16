// Bounds on what the valet reads: a configuration value that cannot serve
// its use stops every tool with exit 78 and one line naming the key, and a
// runaway record line is skipped without being held in memory.
import t from 'tap';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { binPath, makeValetRoot, runBin } from '@prompt-valet/testkit';

t.setTimeout(600_000);

// Each tool with the arguments that make it load the configuration and nothing else first.
const TOOLS: [string, string[]][] = [
  ['pv-claim', ['--limit', '0']],
  ['pv-resolve', []],
  ['pv-clone', []],
  ['pv-run-codex', []],
  ['pv-publish', []],
  ['pv-settle', []],
  ['pv-watcher', ['--once']],
  ['pv-tree', ['--once']],
  ['pv-status', []],
  ['pv-web', ['--port', '0']],
];

// Values that pass a type check but would fail every prompt (issue 15.4).
const BAD_CONFIGS: [Record<string, unknown>, string][] = [
  [{ watcher: { agent_branch_prefix: '-x/' } }, 'watcher.agent_branch_prefix'],
  [{ git_owner: '-evil' }, 'git_owner'],
  [{ tree_builder: { branch_name_blacklist: [1, 2] } }, 'tree_builder.branch_name_blacklist[0]'],
  [{ watcher: { commit_author_name: 'a\nb' } }, 'watcher.commit_author_name'],
];

for (const [overrides, key] of BAD_CONFIGS) {
  t.test(`${key}: every tool exits 78 with one line naming it`, async (t) => {
    const root = await makeValetRoot(overrides);
    t.teardown(() => root.cleanup());
    await Promise.all(TOOLS.map(async ([tool, args]) => {
      const r = await runBin(tool, ['--config', root.configPath, ...args], { input: '', timeout: 60_000 });
      t.equal(r.code, 78, `${tool} exits 78`);
      const lines = r.stderr.trim().split('\n');
      t.equal(lines.length, 1, `${tool}: one line (${r.stderr.trim()})`);
      t.ok(lines[0]!.includes(`: ${key}: got `), `${tool}: the line names ${key}`);
      t.equal(r.stdout, '', `${tool}: no records`);
    }));
  });
}

t.test('a 200 MB record line costs pv-resolve no more memory than a small one', async (t) => {
  const root = await makeValetRoot();
  t.teardown(() => root.cleanup());
  const lineBytes = 200 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  async function* input() {
    yield Buffer.from('{"v":1,"pad":"');
    for (let sent = 0; sent < lineBytes; sent += chunk.length) yield chunk;
    yield Buffer.from('"}\n{"v":1,"run_id":"next"}\n');
  }
  // GNU time's %M: the child's peak resident set, in KiB, as the last line of stderr.
  const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, binPath('pv-resolve'), '--config', root.configPath], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 300_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  Readable.from(input()).pipe(child.stdin);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 0, stderr);
  const records = stdout.trim().split('\n').map((l) => JSON.parse(l) as { run_id?: string; error?: { code: string }; input?: { bytes: number } });
  t.equal(records.length, 2, 'one record per line');
  t.match(records[0], { error: { code: 'record_too_large' }, input: { bytes: lineBytes + '{"v":1,"pad":""}'.length } });
  t.equal(records[1]!.run_id, 'next', 'the next line is read as usual');
  t.equal(records[1]!.error?.code, 'not_claimed', 'and handled by the step');
  const peakKiB = Number(stderr.trim().split('\n').pop());
  t.comment(`pv-resolve peak RSS reading a 200 MB line: ${Math.round(peakKiB / 1024)} MB`);
  t.ok(peakKiB > 0 && peakKiB < 150 * 1024, `peak RSS ${Math.round(peakKiB / 1024)} MB stays far below the line's 200 MB`);
});
