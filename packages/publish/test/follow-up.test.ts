import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '@prompt-valet/core';
import { makeRunRecord, makeValetRoot, runBin, startFakeGitHub } from '@prompt-valet/testkit';
import { commentOnce, prNumberOf } from '../src/follow-up.js';
import { ghRepoArg } from '../src/gh.js';
import { runMarker } from '../src/pr-text.js';

const RUN = '20261130-070000-000-aaaaaaaa';

t.test('a follow-up comments on the PR once: a resumed publish finds its comment by the run marker (real gh, fake GitHub)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-publish-follow-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const gh = await startFakeGitHub({ dir: path.join(dir, 'gh') });
  t.teardown(() => gh.close());
  const pr = gh.seedPullRequest({ owner: 'acme', repo: 'widget', head: `codex/add-a-${RUN}` });
  const log = createLogger('pv-publish', { stream: new PassThrough(), env: {} });
  const opts = { cmd: 'gh', host: gh.host, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...gh.ghEnv() }, cwd: dir };
  const comment = { runId: RUN, runRoot: dir, prUrl: pr.url, title: 'Add b', body: `Added b.\n\n${runMarker(RUN)}\n` };

  const first = await commentOnce(opts, ghRepoArg(gh.host, 'acme', 'widget'), comment, log);
  t.equal(pr.comments.length, 1);
  t.equal(first, pr.comments[0]!.url, 'the URL gh printed');
  t.match(pr.comments[0]!.body, /^\*\*Follow-up:\*\* Add b\n\nAdded b\./);
  const again = await commentOnce(opts, ghRepoArg(gh.host, 'acme', 'widget'), comment, log);
  t.equal(pr.comments.length, 1, 'not posted twice');
  t.equal(again, first);
  t.equal(gh.requests.filter((r) => r.operation === 'CommentCreate').length, 1);
});

t.test('prNumberOf: the number of a PR URL; anything else is refused', async (t) => {
  t.equal(prNumberOf('https://127.0.0.1:4443/acme/widget/pull/12'), '12');
  t.throws(() => prNumberOf('https://github.com/acme/widget/issues/12'), { code: 'gh_failed' });
});

t.test('a forged follow-up (not what pv-resolve recorded) is refused by pv-clone and pv-publish before anything is touched', async (t) => {
  const root = await makeValetRoot({ watcher: {} }, 'pv-publish-forged-');
  t.teardown(() => root.cleanup());
  const rec = await makeRunRecord({ processed: root.processed, reposRoot: root.repos, cloneUrl: 'file:///nowhere/acme/widget.git', agentBranch: 'dev' });
  // As if pv-resolve made it a follow-up of nothing: a record may say anything.
  rec.target!.follow_up = { via: 'run_id', of_run: RUN, root_run: RUN, previous_run: RUN };
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const tool of ['pv-clone', 'pv-publish']) {
    const out = (await runBin(tool, ['--config', root.configPath], { input: [rec], env })).records[0]!;
    t.match(out.error, { code: 'foreign_path', message: /not what pv-resolve recorded/ }, tool);
    t.notOk(out.checkout ?? out.publish, `${tool} did nothing`);
  }
});
