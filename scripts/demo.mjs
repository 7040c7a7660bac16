// make demo: the whole pipeline on an embedded default, no credentials, no
// network. A local bare origin served by `git daemon` on loopback, the real
// codex CLI talking to a scripted local model (testkit's fake Responses
// API: the prompt's own ```sh block is what the "model" runs), publisher
// `none` (the branch is pushed; the PR title and body are written to the run
// folder). Everything lives in one temporary folder, printed at the end.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cloneInto,
  makeOrigin,
  makeValetRoot,
  promptScriptResponder,
  startFakeModel,
  startGitDaemon,
  writeCodexHome,
} from '../packages/testkit/dist/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (tool) => path.join(repo, 'packages', tool.replace(/^pv-/, ''), 'bin', `${tool}.js`);
const say = (s) => process.stdout.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

// A valet root laid out like /srv/prompt-valet, with its config file.
const valet = await makeValetRoot({}, 'prompt-valet-demo-');
const root = valet.root;
const dirs = { inbox: valet.inbox, processed: valet.processed, finished: valet.finished, repos: valet.repos, origins: path.join(root, 'origins') };

say(`A local origin: acme/widget (branches main, dev) served by git daemon`);
const bare = await makeOrigin(path.join(dirs.origins, 'acme', 'widget.git'), {
  branches: ['main', 'dev'],
  files: { 'README.md': '# widget\n\nA tiny demo repository.\n', 'widget.py': 'def widget():\n    return 42\n' },
});
const daemon = await startGitDaemon(dirs.origins);
const model = await startFakeModel([], { respond: promptScriptResponder() });
const home = await writeCodexHome(path.join(root, 'codex-home'), model);
console.log(`origin:  ${daemon.url('acme/widget.git')}\nmodel:   ${model.baseUrl} (scripted)`);

const configPath = valet.configPath;
const codex = path.join(repo, 'node_modules', '.bin', 'codex');
await valet.configure({
  watcher: {
    git_protocol: 'git',
    git_default_host: new URL(daemon.baseUrl).host,
    runner_cmd: codex,
    runner_model: 'mock-model',
    runner_timeout_seconds: 120,
    settle_seconds: 0,
    publisher: 'none',
  },
});
const env = { ...process.env, ...home.env, PV_CONFIG: configPath, NO_COLOR: '1' };
// Asynchronous on purpose: the scripted model answers codex from this very
// process, so its event loop must keep running while the tools do.
const run = (tool, args) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [bin(tool), ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGTERM'), 300_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? 1);
    });
  });

let status = 1;
try {
  say('pv-tree --once: mirror the upstream branches into the inbox');
  await cloneInto(daemon.url('acme/widget.git'), path.join(dirs.repos, 'acme', 'widget'));
  await run('pv-tree', ['--once']);

  say('Drop a prompt into inbox/widget/main/');
  const prompt = [
    '---',
    'title: Add a greeting module',
    '---',
    '# Add a greeting',
    '',
    'Add `greeting.py` with a `greet(name)` function.',
    '',
    '```sh',
    "printf 'def greet(name):\\n    return f\"Hello, {name}!\"\\n' > greeting.py",
    '```',
    '',
  ].join('\n');
  const promptPath = path.join(dirs.inbox, 'widget', 'main', 'add-greeting.prompt.md');
  fs.writeFileSync(`${promptPath}.PARTIAL`, prompt);
  fs.renameSync(`${promptPath}.PARTIAL`, promptPath);
  console.log(promptPath);

  say('pv-watcher --once: claim, resolve, clone, run codex, publish, settle');
  status = await run('pv-watcher', ['--once']);

  say('pv-status');
  await run('pv-status', []);

  const finished = execFileSync('find', [dirs.finished, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n').join('\n                  ');
  const runDir = fs.readdirSync(dirs.processed).filter((d) => !d.startsWith('.'))[0];
  const runRoot = path.join(dirs.processed, runDir ?? '');
  const st = JSON.parse(fs.readFileSync(path.join(runRoot, 'status.json'), 'utf8'));
  say('Result');
  console.log(`prompt settled:   ${finished}`);
  console.log(`run folder:       ${runRoot}`);
  console.log(`                  ${fs.readdirSync(runRoot).join('  ')}`);
  console.log(`state:            ${st.state} (${st.outcome ?? st.error?.message ?? ''})`);
  if (st.state === 'done' && st.agent_branch) {
    console.log(`agent branch:     ${st.agent_branch}, pushed to ${daemon.url('acme/widget.git')}`);
    console.log(execFileSync('git', ['--git-dir', bare, 'log', '--stat', '--format=  %h %s (%an)', '-1', st.agent_branch], { encoding: 'utf8' }));
  }
  const prBody = path.join(runRoot, 'pr-body.md');
  if (fs.existsSync(prBody)) console.log(`pull request text (publisher none): ${prBody}\n${fs.readFileSync(prBody, 'utf8')}`);
  if (st.state !== 'done') status = 1;
} finally {
  await daemon.close();
  await model.close();
}
console.log(`\nEverything is in ${root} (remove it when done).`);
process.exitCode = status;
