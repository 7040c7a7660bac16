import t from 'tap';
import { execa } from 'execa';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startFakeGitHub } from '../src/index.js';

t.test('the real gh creates, lists and refuses duplicate PRs against the fake', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-fakegh-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const gh = await startFakeGitHub({ dir });
  t.teardown(() => gh.close());
  const env = { ...process.env, ...gh.ghEnv() };
  const body = path.join(dir, 'body.md');
  await fsp.writeFile(body, 'the body\n');
  const run = (args: string[]) => execa('gh', args, { env, cwd: dir, reject: false, timeout: 60_000, stdin: 'ignore' });
  const repo = `--repo=${gh.host}/acme/widget`;

  const created = await run(['pr', 'create', repo, '--base=main', '--head=codex/x', '--title=Fix it', `--body-file=${body}`, '--draft', '--label=bug']);
  t.equal(created.exitCode, 0, created.stderr);
  t.match(created.stdout, `https://${gh.host}/acme/widget/pull/1`);
  t.match(gh.pullRequests, [{ owner: 'acme', repo: 'widget', base: 'main', head: 'codex/x', title: 'Fix it', body: 'the body\n', draft: true, labels: ['bug'] }]);
  t.ok(gh.requests.every((r) => r.token === 'fake-token'), 'gh sent the token from its env');

  const listed = await run(['pr', 'list', repo, '--head=codex/x', '--state=open', '--json=url', '--limit=1']);
  t.same(JSON.parse(listed.stdout), [{ url: `https://${gh.host}/acme/widget/pull/1` }]);

  gh.seedPullRequest({ owner: 'acme', repo: 'widget', head: 'codex/y' });
  const dup = await run(['pr', 'create', repo, '--base=main', '--head=codex/y', '--title=T', `--body-file=${body}`]);
  t.not(dup.exitCode, 0, 'gh refuses a second PR for a head with an open one');
  t.match(dup.stderr, /already exists/);
  t.equal(gh.pullRequests.length, 1);

  gh.failNext('PullRequestCreate', 502);
  const failed = await run(['pr', 'create', repo, '--base=main', '--head=codex/z', '--title=T', `--body-file=${body}`]);
  t.not(failed.exitCode, 0, 'an injected failure reaches gh');
  t.same(gh.unhandled, []);
});
