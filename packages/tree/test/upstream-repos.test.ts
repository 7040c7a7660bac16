import t from 'tap';
import { normaliseConfig } from '@prompt-valet/core';
import { ghHostOf, parseRepoList } from '../src/upstream-repos.js';

t.test("gh repo list's answer: archived skipped, invalid names skipped with the reason, anything else malformed fails", async (t) => {
  const ok = parseRepoList('acme', JSON.stringify([{ name: 'widget', isArchived: false }, { name: 'old', isArchived: true }, { name: 'a b', isArchived: false }, { name: '.github' }, { name: 'gadget' }]));
  t.match(ok, { ok: true, repos: ['gadget', 'widget'], skipped: [{ name: 'a b' }, { name: '.github', reason: /hidden/ }] });
  t.match(parseRepoList('acme', 'Welcome to GitHub CLI'), { ok: false, reason: 'gh repo list acme: the answer is not JSON' });
  t.match(parseRepoList('acme', '{"name":"x"}'), { ok: false, reason: /not a list/ });
  t.match(parseRepoList('acme', '[{"isArchived":false}]'), { ok: false, reason: /without a name/ });
});

t.test('the GitHub host: GH_HOST, else watcher.gh_host, else git_default_host; a folder is not a host', async (t) => {
  const cfg = (watcher: Record<string, unknown>) => normaliseConfig({ watcher }, 'x.yaml', '/').config;
  t.same(ghHostOf(cfg({}), {}), { ok: true, host: 'github.com' });
  t.same(ghHostOf(cfg({ gh_host: 'ghe.example.com' }), {}), { ok: true, host: 'ghe.example.com' });
  t.same(ghHostOf(cfg({ gh_host: 'ghe.example.com' }), { GH_HOST: '127.0.0.1:8443' }), { ok: true, host: '127.0.0.1:8443' });
  t.match(ghHostOf(cfg({ git_protocol: 'file', git_default_host: '/srv/origins' }), {}), { ok: false, reason: /set watcher\.gh_host or GH_HOST/ });
});
