// End to end: a prompt dropped in the inbox becomes a commit upstream and a
// pull request, through pv-watcher and every pv-* tool, with the real git
// (served over http by git-http-backend), the real codex (against the fake
// model) and the real gh (against the fake GitHub over TLS).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { git } from '@prompt-valet/core';
import { originBranches, startPipelineFixture } from '@prompt-valet/testkit';

// Real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(900_000);

t.test('a prompt becomes a done file, a commit upstream and a PR', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'], transport: 'http' });
  t.teardown(() => v.close());
  const script = 'printf "token=%s run=%s\\n" "${GH_TOKEN:-absent}" "$PV_RUN_ID" > agent-env.txt && echo hello > hello.txt';
  const text = v.prompt(script, 'Say hello');
  await v.root.dropPrompt('widget/main/say-hello.prompt.md', text);

  const { code, stderr } = await v.runOnce();
  t.equal(code, 0, stderr);

  // The prompt: settled as done under finished/, same relative path, content intact.
  t.same(await v.listFinished(), ['widget/main/say-hello.done.md']);
  t.equal(fs.readFileSync(path.join(v.root.finished, 'widget/main/say-hello.done.md'), 'utf8'), text);
  t.same(fs.readdirSync(path.join(v.root.inbox, 'widget/main')), [], 'nothing left in the inbox folder');

  // The run folder.
  const runs = fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.'));
  t.equal(runs.length, 1);
  const runRoot = path.join(v.root.processed, runs[0]!);
  for (const f of ['prompt.md', 'status.json', 'agent.log', 'last-message.md', 'pr-body.md', 'publish.json']) {
    t.ok(fs.existsSync(path.join(runRoot, f)), `run folder holds ${f}`);
  }
  const status = JSON.parse(fs.readFileSync(path.join(runRoot, 'status.json'), 'utf8'));
  t.equal(status.state, 'done');
  t.same(status.history.map((h: { state: string }) => h.state), ['claimed', 'resolved', 'cloned', 'running', 'published', 'done']);
  t.equal(fs.readFileSync(path.join(runRoot, 'prompt.md'), 'utf8'), text);

  // Upstream: the agent branch with the agent's work.
  const agentBranch: string = status.agent_branch;
  t.match(agentBranch, new RegExp(`^codex/say-hello-${runs[0]}$`));
  const branches = await originBranches(v.bare('widget'));
  t.ok(branches.has(agentBranch), 'agent branch pushed');
  const show = async (file: string) => (await git(['show', `${agentBranch}:${file}`], { cwd: v.bare('widget') })).stdout;
  t.equal(await show('hello.txt'), 'hello');
  t.equal(await show('agent-env.txt'), `token=absent run=${runs[0]}`, 'the agent had PV_RUN_ID and no GH_TOKEN');
  t.match(await show(`docs/AGENT_RUNS/codex-run-${runs[0]}.md`), /Ran the prompt's script/);

  // GitHub: one PR from the agent branch into the inbox branch.
  t.equal(v.github.pullRequests.length, 1);
  const pr = v.github.pullRequests[0]!;
  t.match(pr, { owner: 'acme', repo: 'widget', base: 'main', head: agentBranch, title: 'Say hello', draft: false });
  t.match(pr.body, new RegExp(runs[0]!));
  t.equal(status.pr_url, pr.url);
  t.ok(v.github.requests.every((r) => r.token === 'gh-secret-token-for-tests'), 'gh used the token');

  // The token never lands in the run folder.
  // (recursive: the jail's folders, jail/{home,codex-home,out}, and steps/ are in it too)
  for (const f of fs.readdirSync(runRoot, { recursive: true }).map(String).filter((f) => fs.lstatSync(path.join(runRoot, f)).isFile())) {
    t.notMatch(fs.readFileSync(path.join(runRoot, f), 'utf8'), /gh-secret-token-for-tests/, `${f} holds no token`);
  }
  t.notMatch(stderr, /gh-secret-token-for-tests/, 'no token in the logs');
});

t.test('--once on an empty inbox exits 0 at once and changes nothing', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'] });
  t.teardown(() => v.close());
  const { code, stderr } = await v.runOnce();
  t.equal(code, 0, stderr);
  t.same(await v.listFinished(), []);
  t.same(fs.readdirSync(v.root.processed).filter((d) => !d.startsWith('.')), []);
});
