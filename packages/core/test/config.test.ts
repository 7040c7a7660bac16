import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { CONFIG_SCHEMA, ConfigError, loadConfig, normaliseConfig } from '../src/config.js';
import { REPO_ROOT_FOR_TESTS, tmpConfig } from './paths.js';

const shipped = path.join(REPO_ROOT_FOR_TESTS, 'configs', 'prompt-valet.yaml');

function flatten(obj: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) ? flatten(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

t.test('the shipped configs/prompt-valet.yaml holds exactly the schema, with the defaults', async (t) => {
  const raw = YAML.parse(fs.readFileSync(shipped, 'utf8')) as Record<string, unknown>;
  t.same(flatten(raw).sort(), Object.keys(CONFIG_SCHEMA).sort(), 'every key documented, none extra');
  for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) {
    const value = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], raw);
    t.same(value, spec.default, `${key} default matches the code`);
  }
  const loaded = loadConfig({ path: shipped });
  t.same(loaded.warnings, []);
  t.equal(loaded.config.inbox_mode, 'legacy_single_owner');
});

t.test('every key has a comment in the shipped file', async (t) => {
  const text = fs.readFileSync(shipped, 'utf8').split('\n');
  for (const key of Object.keys(CONFIG_SCHEMA)) {
    const leaf = key.split('.').pop()!;
    const i = text.findIndex((l) => new RegExp(`^\\s*${leaf}:`).test(l));
    t.ok(i > 0 && /^\s*#/.test(text[i - 1]!), `${key} is preceded by a comment`);
  }
});

t.test('the original layout (legacy keys only) parses and normalises', async (t) => {
  const file = tmpConfig(
    t,
    [
      'inbox: /srv/prompt-valet/inbox',
      'processed: /srv/prompt-valet/processed',
      'finished: /srv/prompt-valet/finished',
      'repos_root: /srv/repos',
      'git_owner: nova-rey',
      'tree_builder:',
      '  branch_mode: all',
      '  branch_whitelist: []',
      '  branch_blacklist: []',
      '  branch_name_blacklist: ["HEAD"]',
      '  scan_interval_seconds: 60',
      '  eager_repos: false',
      'watcher:',
      '  auto_clone_missing_repos: true',
      '  git_default_host: github.com',
      '  git_protocol: https',
      '  cleanup_non_git_dirs: true',
      '  runner_cmd: codex',
      '  runner_model: gpt-5.1-codex-mini',
      '  runner_sandbox: danger-full-access',
      '',
    ].join('\n'),
  );
  const { config, warnings } = loadConfig({ path: file });
  t.same(warnings, []);
  t.equal(config.inbox_mode, 'legacy_single_owner', 'inbox_mode defaults to legacy_single_owner');
  t.equal(config.git_owner, 'nova-rey');
  t.equal(config.watcher.git_default_owner, 'nova-rey', 'git_owner fills watcher.git_default_owner');
  t.equal(config.watcher.runner_model, 'gpt-5.1-codex-mini');
  t.equal(config.watcher.max_parallel, 2, 'keys not given take their defaults');
});

t.test('watcher.git_default_owner fills a missing git_owner', async (t) => {
  const { config } = normaliseConfig({ watcher: { git_default_owner: 'acme' } }, 'x.yaml', '/');
  t.equal(config.git_owner, 'acme');
});

t.test('both owners set and different: git_owner wins, with a warning', async (t) => {
  const { config, warnings } = normaliseConfig({ git_owner: 'a', watcher: { git_default_owner: 'b' } }, 'x.yaml', '/');
  t.equal(config.git_owner, 'a');
  t.match(warnings[0], /differ/);
});

t.test('unknown keys are reported, not dropped silently', async (t) => {
  const { warnings } = normaliseConfig({ inbx: '/x', watcher: { max_paralel: 3 } }, 'x.yaml', '/');
  t.same(warnings, ['x.yaml: unknown key inbx (ignored)', 'x.yaml: unknown key watcher.max_paralel (ignored)']);
});

t.test('relative paths are anchored at the config file folder', async (t) => {
  const { config } = normaliseConfig({ inbox: 'in', repos_root: '../repos' }, 'x.yaml', '/etc/pv');
  t.equal(config.inbox, '/etc/pv/in');
  t.equal(config.repos_root, '/etc/repos');
});

t.test('a missing explicit file is an error; the default path may be absent when allowed', async (t) => {
  t.throws(() => loadConfig({ path: '/nonexistent/pv.yaml' }), { name: 'ConfigError', message: /no such config file/ });
  const { config, path: p } = loadConfig({ env: {}, allowMissing: true });
  if (!fs.existsSync('/srv/prompt-valet/config/prompt-valet.yaml')) {
    t.equal(p, undefined);
    t.equal(config.inbox, '/srv/prompt-valet/inbox');
  } else {
    t.pass('an installed config exists on this machine');
  }
});

t.test('invalid YAML names the line', async (t) => {
  const file = tmpConfig(t, 'inbox: /x\nwatcher:\n  max_parallel: [1\n');
  t.throws(() => loadConfig({ path: file }), { message: /not valid YAML at line \d+/ });
});

// One row per key kind: a bad value and what the message must say.
const BAD: [string, unknown, RegExp][] = [
  ['inbox', 42, /inbox: got number 42, expected a path/],
  ['inbox', '', /inbox: got string "", expected a path/],
  ['inbox_mode', 'single', /inbox_mode: got string "single", expected one of legacy_single_owner, multi_owner/],
  ['tree_builder.branch_mode', 'some', /expected one of all, whitelist, blacklist, both/],
  ['tree_builder.branch_whitelist', 'main', /branch_whitelist: got string "main", expected a list of strings/],
  ['tree_builder.branch_blacklist', [{ a: 1 }], /branch_blacklist\[0\]: got a mapping, expected a string/],
  ['tree_builder.scan_interval_seconds', 0, /scan_interval_seconds: got number 0, expected a whole number >= 1/],
  ['tree_builder.eager_repos', 'yes', /eager_repos: got string "yes", expected true or false/],
  ['watcher.max_parallel', 2.5, /max_parallel: got number 2.5, expected a whole number from 1 to 64/],
  ['watcher.quiet_seconds', -1, /quiet_seconds: got number -1, expected a number >= 0/],
  ['watcher.settle_seconds', -1, /settle_seconds: got number -1, expected a number >= 0/],
  ['watcher.git_protocol', 'ftp', /git_protocol: got string "ftp", expected one of https, ssh, git, http, file/],
  ['watcher.runner_cmd', '', /runner_cmd: got string "", expected a non-empty string/],
  ['watcher.agent_runs_dir', '../out', /agent_runs_dir: .*expected a path inside the repository/],
  ['watcher', 'on', /watcher: got string "on", expected a mapping of keys/],
];

t.test('bad values name the key, the value and what was expected', async (t) => {
  for (const [key, value, re] of BAD) {
    const raw: Record<string, unknown> = {};
    const parts = key.split('.');
    if (parts.length === 2) raw[parts[0]!] = { [parts[1]!]: value };
    else raw[key] = value;
    t.throws(() => normaliseConfig(raw, 'c.yaml', '/'), ConfigError, key);
    try {
      normaliseConfig(raw, 'c.yaml', '/');
    } catch (err) {
      t.match((err as Error).message, re, key);
      t.equal((err as ConfigError).exitCode, 78);
    }
  }
});

t.test('every key accepts its own default and rejects a value of the wrong type', async (t) => {
  for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) {
    const parts = key.split('.');
    const wrap = (v: unknown) => (parts.length === 2 ? { [parts[0]!]: { [parts[1]!]: v } } : { [key]: v });
    t.doesNotThrow(() => normaliseConfig(wrap(spec.default), 'c.yaml', '/'), `${key} default accepted`);
    const wrong = typeof spec.default === 'boolean' || Array.isArray(spec.default) || typeof spec.default === 'number' ? { nested: 1 } : { nested: 1 };
    t.throws(() => normaliseConfig(wrap(wrong), 'c.yaml', '/'), ConfigError, `${key} rejects a mapping`);
  }
});

t.test('an empty file or empty section means the defaults', async (t) => {
  const file = tmpConfig(t, '# nothing\n');
  t.equal(loadConfig({ path: file }).config.watcher.max_parallel, 2);
  const { config } = normaliseConfig({ tree_builder: null }, 'c.yaml', '/');
  t.same(config.tree_builder.branch_name_blacklist, ['HEAD']);
});

t.test("the original's git_host, git_protocol and tree_builder.greedy_inboxes are read, not warned about", async (t) => {
  const file = tmpConfig(t, ['git_owner: nova-rey', 'git_host: git.example.org', 'git_protocol: ssh', 'tree_builder:', '  greedy_inboxes: true', ''].join('\n'));
  const { config, warnings } = loadConfig({ path: file });
  t.same(warnings, []);
  t.equal(config.watcher.git_default_host, 'git.example.org', 'git_host is watcher.git_default_host');
  t.equal(config.watcher.git_protocol, 'ssh', 'git_protocol is watcher.git_protocol');
  t.equal(config.tree_builder.greedy_inboxes, true);
  const defaults = normaliseConfig({}, 'x.yaml', '/').config;
  t.equal(defaults.watcher.git_default_host, 'github.com', 'not set: the watcher default stays');
  t.equal(defaults.tree_builder.greedy_inboxes, false);
  t.equal(defaults.tree_builder.mirror_agent_branches, true);
});

t.test('legacy git_host/git_protocol and the watcher keys set differently: the legacy key wins, with a warning', async (t) => {
  const { config, warnings } = normaliseConfig({ git_protocol: 'git', watcher: { git_protocol: 'https', git_default_host: 'a.example' }, git_host: 'a.example' }, 'x.yaml', '/');
  t.equal(config.watcher.git_protocol, 'git');
  t.same(warnings, ['x.yaml: git_protocol (git) and watcher.git_protocol (https) differ; using git_protocol']);
  t.throws(() => normaliseConfig({ git_protocol: 'smtp' }, 'x.yaml', '/'), /git_protocol: got string "smtp", expected one of , https/);
});

t.test('watcher.settle_seconds, the old name of the quiet window, is still read, with one line naming the new key', async (t) => {
  const old = normaliseConfig({ watcher: { settle_seconds: 7 } }, 'x.yaml', '/');
  t.equal(old.config.watcher.quiet_seconds, 7);
  t.same(old.warnings, ['x.yaml: watcher.settle_seconds is deprecated; call it watcher.quiet_seconds']);
  const both = normaliseConfig({ watcher: { settle_seconds: 7, quiet_seconds: 3 } }, 'x.yaml', '/');
  t.equal(both.config.watcher.quiet_seconds, 3, 'the new key wins');
  t.same(both.warnings, ['x.yaml: watcher.settle_seconds is deprecated and ignored: watcher.quiet_seconds is set']);
  t.same(normaliseConfig({ watcher: { quiet_seconds: 3 } }, 'x.yaml', '/').warnings, [], 'the new key alone: no warning');
});

t.test('notify.webhooks: each entry must be an http(s) URL; the error names the entry', async (t) => {
  t.doesNotThrow(() => normaliseConfig({ notify: { webhooks: ['https://hooks.slack.com/services/a/b/c', 'ntfy:http://10.0.0.2/valet'] } }, 'x.yaml', '/'));
  t.throws(() => normaliseConfig({ notify: { webhooks: ['https://ok.example/', 'mailto:me@example.org'] } }, 'x.yaml', '/'), /x\.yaml: notify\.webhooks\[1\]: got string "mailto:me@example\.org", expected a webhook URL.*the scheme is mailto, not http or https/);
});
