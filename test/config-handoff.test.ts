// pv-watcher hands the config it parsed to every step of a run
// (PV_CONFIG_PARSED, core config.ts), so the six steps do not parse the same
// YAML again; the agent never gets it. Real pv-watcher and steps; each step
// is started through a wrapper (PV_TOOLS_DIR) that notes what it was handed.
import t from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_HANDOFF_ENV, loadConfig } from '@prompt-valet/core';
import { binPath, cloneInto, makeOrigin, makeValetRoot, runBin } from '@prompt-valet/testkit';

t.setTimeout(300_000);

const STEPS = ['pv-claim', 'pv-resolve', 'pv-clone', 'pv-run-codex', 'pv-publish', 'pv-settle'];

t.test('every step of a run gets the watcher\'s parsed config for the same file; the agent does not', async (t) => {
  const root = await makeValetRoot({ watcher: { publisher: 'none', runner_model: 'test-model' } }, 'pv-handoff-');
  t.teardown(() => root.cleanup());
  const bare = await makeOrigin(path.join(root.root, 'origins', 'acme', 'widget.git'), { branches: ['main'], files: { 'README.md': '# widget\n' } });
  await cloneInto(`file://${bare}`, path.join(root.repos, 'acme', 'widget'));
  await fsp.mkdir(path.join(root.inbox, 'widget', 'main'), { recursive: true });

  // The agent notes whether the handoff reached it (test/fixtures: inside the jail /tmp is its own).
  const agent = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'timed-agent.sh');
  await root.configure({ watcher: { runner_cmd: agent } });

  // Each step through a wrapper that appends "<step> <handoff>" to a file, then runs the real step.
  const tools = path.join(root.root, 'tools');
  const seen = path.join(root.root, 'seen.txt');
  fs.mkdirSync(tools);
  for (const step of STEPS) {
    fs.writeFileSync(path.join(tools, step), [
      '#!/bin/sh',
      `printf '%s %s %s\\n' ${step} "$1" "\${${CONFIG_HANDOFF_ENV}:-none}" >> '${seen}'`,
      `exec '${process.execPath}' '${binPath(step)}' "$@"`,
      '',
    ].join('\n'), { mode: 0o755 });
  }

  await root.dropPrompt('widget/main/handoff.prompt.md', '# handoff\n\nWrite a file.\nagent-seconds: 0\n');
  const env: NodeJS.ProcessEnv = { ...process.env, PV_TOOLS_DIR: tools, NO_COLOR: '1' };
  delete env[CONFIG_HANDOFF_ENV];
  const run = await runBin('pv-watcher', ['--once', '--config', root.configPath], { env });
  t.equal(run.code, 0, run.stderr);
  t.ok(fs.existsSync(path.join(root.finished, 'widget', 'main', 'handoff.done.md')), 'the run is done');

  const lines = fs.readFileSync(seen, 'utf8').trim().split('\n');
  const expected = loadConfig({ path: root.configPath, env: {} });
  // Every start of a step, the recovery pv-claim --recover at start and end included.
  for (const step of STEPS) t.ok(lines.some((l) => l.startsWith(`${step} `)), `${step} ran`);
  for (const line of lines) {
    const [step, firstArg] = line.split(' ', 2) as [string, string];
    const handoff = JSON.parse(line.slice(`${step} ${firstArg} `.length)) as { file: string; raw: unknown };
    t.equal(handoff.file, root.configPath, `${step} ${firstArg}: handed the config of the file it was given`);
    t.same(handoff.raw, expected.source?.raw, `${step} ${firstArg}: the same configuration as the file holds`);
  }
  const runId = fs.readdirSync(root.processed).find((d) => !d.startsWith('.'))!;
  const span = fs.readFileSync(path.join(root.processed, runId, 'jail', 'home', 'agent-span.txt'), 'utf8');
  t.match(span, /^handoff absent$/m, 'the agent does not get it');
});
