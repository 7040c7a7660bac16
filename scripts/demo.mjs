// make demo: the whole pipeline on an embedded default, no credentials, no
// network. A local bare origin served by `git daemon` on loopback, the real
// codex CLI talking to a scripted local model (testkit's fake Responses
// API: the prompt's own ```sh block is what the "model" runs), publisher
// `none` (the branch is pushed; the PR title and body are written to the run
// folder). Everything lives in one temporary folder, printed at the end.
//
// `--keep` (make demo KEEP=1) keeps the origin and the model serving after
// the run and prints how to try each tool by hand against this demo root,
// until Ctrl-C.
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
const keep = process.argv.includes('--keep');
// Bold only for a person at a terminal: a captured log stays plain text.
const bold = process.stdout.isTTY && !process.env.NO_COLOR;
const say = (s) => process.stdout.write(bold ? `\n\x1b[1m== ${s}\x1b[0m\n` : `\n== ${s}\n`);

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
    quiet_seconds: 0,
    publisher: 'none',
  },
});
const env = { ...process.env, ...home.env, PV_CONFIG: configPath, NO_COLOR: '1' };
// Asynchronous on purpose: the scripted model answers codex from this very
// process, so its event loop must keep running while the tools do.
// A tool's records (stdout) go to a file in the demo root, so the screen
// shows one story: the people's lines each tool writes on stderr.
const recordsDir = path.join(root, 'records');
fs.mkdirSync(recordsDir, { recursive: true });
const run = (tool, args) =>
  new Promise((resolve) => {
    const out = fs.openSync(path.join(recordsDir, `${tool}.jsonl`), 'a');
    const child = spawn(process.execPath, [bin(tool), ...args], { env, stdio: ['ignore', tool === 'pv-status' ? 'inherit' : out, 'inherit'] });
    fs.closeSync(out);
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
  console.log(`records each tool wrote (JSON lines): ${recordsDir}/`);
  if (keep) await tryByHand();
} finally {
  await daemon.close();
  await model.close();
}
console.log(`\nEverything is in ${root} (remove it when done).`);
process.exitCode = status;

/** --keep: the demo's servers stay up; show the commands to try, wait for Ctrl-C. */
async function tryByHand() {
  say('Try the tools by hand (the origin and the model keep serving until Ctrl-C)');
  console.log(`In another shell:
  export PV_CONFIG=${configPath}
  export PATH=${path.join(repo, 'node_modules', '.bin')}:$PATH${Object.entries(home.env).map(([k, v]) => `\n  export ${k}=${v}`).join('')}
  pv-tree --once | jq .                   # mirror the branches again (nothing to do: no output)
  pv-status                                # what is pending, running, finished
  printf 'Add a NOTES file.\\n\\n\`\`\`sh\\necho hi > NOTES\\n\`\`\`\\n' > ${path.join(dirs.inbox, 'widget', 'dev', 'notes.prompt.md')}
  pv-watcher --once                       # run it
Every tool has --help; docs/contract.md shows the records they pass on.`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
