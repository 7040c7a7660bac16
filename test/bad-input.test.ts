// Bad input mixed with good: each bad prompt ends as it should, the good
// ones still run, and nothing outside the inbox is touched.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startPipelineFixture } from '@prompt-valet/testkit';

// Real pipelines on a shared 2-core machine: a generous bound for the file.
t.setTimeout(900_000);

t.test('hostile names, a repo missing upstream and a zero-byte file beside good prompts', async (t) => {
  const v = await startPipelineFixture({ repos: ['widget'], publisher: 'none' });
  t.teardown(() => v.close());
  const good1 = v.prompt('echo one > one.txt');
  const good2 = v.prompt('echo two > two.txt');
  await v.root.dropPrompt('widget/main/good-one.prompt.md', good1);
  await v.root.dropPrompt('widget/dev/good-two.prompt.md', good2);
  // A repository name git would read as an option.
  await v.root.dropPrompt('-oProxyCommand=x/main/evil.prompt.md', v.prompt('touch pwned'));
  // A branch folder with a name git forbids.
  await v.root.dropPrompt('widget/bad..branch/x.prompt.md', v.prompt('touch pwned'));
  // A repository that does not exist upstream.
  await v.root.dropPrompt('nosuch/main/ghost.prompt.md', v.prompt('touch ghost'));
  // A prompt right in the inbox root: no repo or branch folder.
  await v.root.dropPrompt('stray.prompt.md', v.prompt('touch stray'));
  // An upload that has not written anything yet.
  fs.writeFileSync(path.join(v.root.inbox, 'widget/main/empty.prompt.md'), '');

  const { code, stderr } = await v.runOnce();
  t.equal(code, 0, 'every pipeline ran');
  const finished = await v.listFinished();
  t.ok(finished.includes('widget/main/good-one.done.md'), 'good prompt on main done');
  t.ok(finished.includes('widget/dev/good-two.done.md'), 'good prompt on dev done');
  t.equal(fs.readFileSync(path.join(v.root.finished, 'widget/main/good-one.done.md'), 'utf8'), good1);
  for (const bad of ['-oProxyCommand=x/main/evil', 'widget/bad..branch/x', 'nosuch/main/ghost', 'stray']) {
    t.ok(finished.includes(`${bad}.error.md`), `${bad}: settled as error`);
    const reason = finished.find((f) => f.startsWith(bad) && !f.endsWith('.error.md'));
    t.ok(reason, `${bad}: a reason beside it (${reason})`);
    if (reason) t.match(fs.readFileSync(path.join(v.root.finished, reason), 'utf8'), /\S/, 'and it says something');
  }
  t.ok(fs.existsSync(path.join(v.root.inbox, 'widget/main/empty.prompt.md')), 'the zero-byte upload is left alone');
  t.notOk(fs.existsSync(path.join(v.root.repos, '-oProxyCommand=x')), 'no folder made for a hostile name');
  t.notOk(fs.existsSync('pwned'), 'no hostile command ran here');
  t.notMatch(stderr, /internal error/);
});
