import t from 'tap';
import { branchPolicy, compilePattern } from '../src/branch-policy.js';
import { parseLsRemoteOutput } from '../src/remote-branches.js';

t.test('list entries: exact unless they contain *, where * matches anything including /', async (t) => {
  t.ok(compilePattern('main')('main'));
  t.notOk(compilePattern('main')('main2'));
  t.notOk(compilePattern('ma.n')('main'), 'regex characters are literal');
  t.ok(compilePattern('release/*')('release/1.0/fix'));
  t.notOk(compilePattern('release/*')('release'));
  t.ok(compilePattern('*-wip')('a/b-wip'));
  t.ok(compilePattern('*')('anything/at/all'));
  t.notOk(compilePattern('Main')('main'), 'case-sensitive');
});

t.test('branch modes', async (t) => {
  const base = { branch_whitelist: ['main', 'release/*'], branch_blacklist: ['release/old'], branch_name_blacklist: ['HEAD'] };
  const names = ['HEAD', 'main', 'dev', 'release/new', 'release/old'];
  const run = (mode: 'all' | 'whitelist' | 'blacklist' | 'both') => names.filter((n) => branchPolicy({ ...base, branch_mode: mode })(n).mirror);
  t.same(run('all'), ['main', 'dev', 'release/new', 'release/old']);
  t.same(run('whitelist'), ['main', 'release/new', 'release/old']);
  t.same(run('blacklist'), ['main', 'dev', 'release/new']);
  t.same(run('both'), ['main', 'release/new']);
  t.match(branchPolicy({ ...base, branch_mode: 'both' })('release/old'), { mirror: false, reason: /branch_blacklist holds "release\/old"/ });
});

t.test('ls-remote output: ref lines are branches, anything else is git talking', async (t) => {
  const sha = 'a'.repeat(40);
  const out = parseLsRemoteOutput(`${sha}\trefs/heads/main\nwarning: something\n${sha}\trefs/heads/feature/x\n${sha}\trefs/tags/v1\n`);
  t.same(out.branches, ['main', 'feature/x']);
  t.match(out.other, /warning: something/);
});
