// What `make install` deploys is what runs prompts: the tools' bundles
// (scripts/bundle.mjs), staged outside the checkout, take a prompt to a
// pull request with the real git, codex (fake model) and gh (fake GitHub).
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startPipelineFixture } from '@prompt-valet/testkit';
import { inRoot, PREFIX, pvInstall, tempRoot } from './fixtures/helpers.js';

t.setTimeout(600_000);

t.test('the deployed bundles turn a dropped prompt into a done file and a PR', async (t) => {
  const root = tempRoot(t, 'bundled');
  const install = pvInstall(['--root', root]);
  t.equal(install.status, 0, install.stderr);
  const watcherBin = inRoot(root, `${PREFIX}/scripts/pv-watcher`);
  t.match(fs.realpathSync(watcherBin), /\/bundle\/pv-watcher\.js$/, 'the deployed pv-watcher is its bundle');

  const v = await startPipelineFixture({ repos: ['widget'] });
  t.teardown(() => v.close());
  await v.root.dropPrompt('widget/main/hello.prompt.md', v.prompt('echo hello > hello.txt', 'Say hello'));

  // The watcher finds the other steps beside its own real path: the staged bundles.
  const child = spawn(watcherBin, ['--once'], { env: v.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);

  t.equal(code, 0, stderr);
  t.same(await v.listFinished(), ['widget/main/hello.done.md']);
  t.equal(v.github.pullRequests.length, 1, 'one pull request opened');
  const [status] = await v.runStatuses();
  t.equal(status?.state, 'done');
  t.ok(fs.existsSync(path.join(v.root.processed, status!.run_id, 'agent.log')), 'the agent ran');
});
