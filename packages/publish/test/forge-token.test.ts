import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { RUN_FILES, type PvRecord } from '@prompt-valet/core';
import { makeOrigin, makeRunRecord, makeValetRoot, runBin, startFakeGitHub, startGitServers } from '@prompt-valet/testkit';

/**
 * The token from systemd's credential (LoadCredential=gh_token:… →
 * $CREDENTIALS_DIRECTORY/gh_token), with no token anywhere in pv-publish's
 * environment: gh gets it for its own commands, and the PR opens.
 */
const TOKEN = 'credential-token-0815';

t.test('pv-publish opens the PR with the token from $CREDENTIALS_DIRECTORY, none in its environment', async (t) => {
  const root = await makeValetRoot({ watcher: {} }, 'pv-publish-cred-');
  t.teardown(() => root.cleanup());
  const origins = path.join(root.root, 'origins');
  await makeOrigin(path.join(origins, 'acme', 'widget.git'));
  const gh = await startFakeGitHub({ dir: path.join(root.root, 'gh'), token: TOKEN });
  t.teardown(() => gh.close());
  const servers = await startGitServers(origins);
  t.teardown(() => servers.close());
  const creds = path.join(root.root, 'credentials');
  await fsp.mkdir(creds);
  await fsp.writeFile(path.join(creds, 'gh_token'), `${TOKEN}\n`, { mode: 0o400 });

  const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const rec = await makeRunRecord({ processed: root.processed, reposRoot: root.repos, cloneUrl: servers.http.url('acme/widget.git') });
  const cloned = (await runBin('pv-clone', ['--config', root.configPath], { input: [rec], env: baseEnv })).records[0]!;
  t.notOk(cloned.error, JSON.stringify(cloned.error));
  await fsp.writeFile(path.join(cloned.checkout!.dir, 'change.txt'), 'x\n');
  const last = path.join(rec.claim!.run_root, RUN_FILES.lastMessage);
  await fsp.writeFile(last, 'Changed.\n');
  const input = { ...cloned, agent: { exit_code: 0, duration_ms: 1, timed_out: false, aborted: false, last_message: last } } as PvRecord;

  const ghEnv: NodeJS.ProcessEnv = { ...gh.ghEnv() };
  delete ghEnv.GH_ENTERPRISE_TOKEN;
  const r = await runBin('pv-publish', ['--config', root.configPath], { input: [input], env: { ...baseEnv, ...ghEnv, CREDENTIALS_DIRECTORY: creds } });
  t.equal(r.code, 0, r.stderr);
  t.notOk(r.records[0]!.error, JSON.stringify(r.records[0]!.error));
  t.equal(r.records[0]!.publish?.outcome, 'pr_opened');
  t.ok(gh.requests.length > 0 && gh.requests.every((q) => q.token === TOKEN), 'gh sent the credential\'s token');
  t.notMatch(r.stdout + r.stderr, TOKEN, 'the token is in no output');
});
