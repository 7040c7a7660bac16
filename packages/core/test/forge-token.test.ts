import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { forgeGitEnv, ForgeTokenError, ghHostFor, GIT_FORGE_TOKEN_ENV, gitCredentialArgs, gitEnv, gitTalksToRemote, readForgeToken, scrubSecrets } from '../src/index.js';

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-forge-token-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the token comes from systemd\'s credential first, then PV_FORGE_TOKEN_FILE, then the environment', async (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'creds'));
  fs.writeFileSync(path.join(dir, 'creds/gh_token'), 'ghp_from_credential\n');
  fs.writeFileSync(path.join(dir, 'token-file'), '  ghp_from_file  \n');
  const env = { CREDENTIALS_DIRECTORY: path.join(dir, 'creds'), PV_FORGE_TOKEN_FILE: path.join(dir, 'token-file'), GH_TOKEN: 'ghp_from_env' };
  t.same(readForgeToken(env), { token: 'ghp_from_credential', source: 'credential', from: path.join(dir, 'creds/gh_token') });
  t.equal(readForgeToken({ ...env, CREDENTIALS_DIRECTORY: path.join(dir, 'none') })?.token, 'ghp_from_file', 'a missing credential falls through');
  t.equal(readForgeToken({ GH_TOKEN: 'ghp_from_env' })?.source, 'environment');
  t.equal(readForgeToken({}), undefined, 'none configured');
});

t.test('a token file that is a symlink, too big or several words is refused with one line', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'real'), 'ghp_x\n');
  fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
  fs.writeFileSync(path.join(dir, 'two'), 'ghp_a ghp_b\n');
  fs.writeFileSync(path.join(dir, 'big'), 'x'.repeat(5000));
  for (const [name, pattern] of [['link', /ELOOP/], ['two', /more than one word/], ['big', /larger than/]] as const) {
    t.throws(() => readForgeToken({ PV_FORGE_TOKEN_FILE: path.join(dir, name) }), pattern, name);
    try {
      readForgeToken({ PV_FORGE_TOKEN_FILE: path.join(dir, name) });
    } catch (err) {
      t.ok(err instanceof ForgeTokenError && err.code === 'forge_token_unreadable' && !err.message.includes('\n'));
    }
  }
});

t.test('git gets the token from the helper, for https only, never on its command line', async (t) => {
  const fill = (protocol: string) =>
    spawnSync('git', [...gitCredentialArgs(), 'credential', 'fill'], {
      input: `protocol=${protocol}\nhost=github.com\npath=o/r.git\n\n`,
      env: gitEnv({ [GIT_FORGE_TOKEN_ENV]: 'ghp_helper_token', HOME: os.tmpdir(), GIT_CONFIG_NOSYSTEM: '1' }),
      encoding: 'utf8',
      timeout: 10_000,
    });
  const https = fill('https');
  t.equal(https.status, 0, https.stderr);
  t.match(https.stdout, /^username=x-access-token$/m);
  t.match(https.stdout, /^password=ghp_helper_token$/m);
  const http = fill('http');
  t.notMatch(http.stdout, 'ghp_helper_token', 'not sent over plain http');
  t.notMatch(gitCredentialArgs().join(' '), 'ghp_helper_token');
  t.ok(gitTalksToRemote(['-C', '/x', 'push', 'origin', 'b']));
  t.ok(gitTalksToRemote(['ls-remote', '--heads', 'u']));
  t.notOk(gitTalksToRemote(['-c', 'x=y', 'commit', '-m', 'push']), 'a local command gets no token');
});

t.test('the helper as environment (pv-tree\'s ls-remote workers) answers the same', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'tok'), 'ghp_env_helper\n');
  const extra = forgeGitEnv({ PV_FORGE_TOKEN_FILE: path.join(dir, 'tok') });
  t.notOk(Object.entries(extra).some(([k, v]) => k !== GIT_FORGE_TOKEN_ENV && String(v).includes('ghp_env_helper')), 'the token only in its own variable');
  const r = spawnSync('git', ['credential', 'fill'], {
    input: 'protocol=https\nhost=github.com\n\n',
    env: gitEnv({ ...extra, HOME: os.tmpdir(), GIT_CONFIG_NOSYSTEM: '1' }),
    encoding: 'utf8',
    timeout: 10_000,
  });
  t.match(r.stdout, /^password=ghp_env_helper$/m, r.stderr);
  t.same(forgeGitEnv({}), {}, 'nothing without a token');
});

t.test('ghHostFor: GH_HOST, else watcher.gh_host, else git_default_host; a folder is not a host', async (t) => {
  const w = { gh_host: '', git_default_host: 'github.com' };
  t.same(ghHostFor({}, w), { ok: true, host: 'github.com' });
  t.same(ghHostFor({}, { ...w, gh_host: 'ghe.example.com' }), { ok: true, host: 'ghe.example.com' });
  t.same(ghHostFor({ GH_HOST: '127.0.0.1:8443' }, { ...w, gh_host: 'ghe.example.com' }), { ok: true, host: '127.0.0.1:8443' });
  t.same(ghHostFor({}, { gh_host: '', git_default_host: '/srv/origins' }), { ok: false, found: '/srv/origins' });
});

t.test('scrubSecrets: forge tokens from the environment and credentials in URLs become ***', async (t) => {
  const text = 'push to https://x-access-token:ghp_abcdef@github.com/a/b failed; token ghp_abcdef; GITHUB_TOKEN=other-secret';
  t.equal(
    scrubSecrets(text, { GH_TOKEN: 'ghp_abcdef', GITHUB_TOKEN: 'other-secret', HOME: '/root' }),
    'push to https://***@github.com/a/b failed; token ***; GITHUB_TOKEN=***',
  );
  t.equal(scrubSecrets('a b c', { GH_TOKEN: 'a' }), 'a b c', 'a one-letter value is not a token');
});
