import t from 'tap';
import { CONFIG_SCHEMA, ConfigError, normaliseConfig, RENAMED_KEYS } from '../src/config.js';

/**
 * Every key, with values that pass and values that would pass a type check
 * but fail what the value is used for. Each bad value must stop the tools
 * with one line naming the key (ConfigError, exit 78).
 */
type Row = { good: unknown[]; bad: [unknown, RegExp][] };

const longName = 'x'.repeat(101);
const TABLE: Record<string, Row> = {
  inbox: { good: ['/srv/in', 'relative/in'], bad: [[42, /expected a path/], ['', /expected a path/], ['/srv/in\nx', /control characters/]] },
  processed: { good: ['/srv/p'], bad: [[[], /expected a path/], ['/a\x1b[2Jb', /control characters/]] },
  finished: { good: ['/srv/f'], bad: [[true, /expected a path/], ['\t', /expected a path/]] },
  repos_root: { good: ['/srv/repos'], bad: [[null, /expected a path/], ['/r\0', /control characters/]] },
  git_owner: { good: ['', 'acme', 'a-b_c.d'], bad: [['-evil', /GitHub owner name.*may not start with "-"/], ['a b', /GitHub owner name/], [longName, /longer than 100/], ['..', /may not be/]] },
  inbox_mode: { good: ['multi_owner'], bad: [['single', /one of legacy_single_owner, multi_owner/]] },
  // Legacy aliases: checked as the keys they stand for.
  git_host: { good: ['', 'github.com', 'ghe.example.com:8443'], bad: [['-oProxyCommand=x', /a host name/], ['user@host', /no user@/]] },
  git_protocol: { good: ['', 'ssh', 'file'], bad: [['ftp', /one of , https, ssh/]] },
  'tree_builder.branch_mode': { good: ['both'], bad: [['some', /one of all, whitelist/]] },
  'tree_builder.branch_whitelist': { good: [[], ['main', 'release/*'], null], bad: [[[1, 2], /branch_whitelist\[0\]: got number 1, expected a string/], [['a b'], /branch_whitelist\[0\].*branch name or pattern/], ['main', /a list of strings/]] },
  'tree_builder.branch_blacklist': { good: [['wip/*']], bad: [[[''], /branch_blacklist\[0\].*branch name or pattern/], [['x..y'], /may not contain "\.\."/]] },
  'tree_builder.branch_name_blacklist': { good: [['HEAD', 'dependabot/*']], bad: [[[1, 2], /branch_name_blacklist\[0\]: got number 1, expected a string/], [['-x'], /may not start with "-"/]] },
  'tree_builder.scan_interval_seconds': { good: [1, 3600], bad: [[0, /whole number >= 1/], [1.5, /whole number/]] },
  'tree_builder.eager_repos': { good: [true], bad: [['yes', /true or false/]] },
  'tree_builder.greedy_inboxes': { good: [true, false], bad: [['yes', /true or false/]] },
  'tree_builder.mirror_agent_branches': { good: [false], bad: [[1, /true or false/]] },
  'watcher.auto_clone_missing_repos': { good: [false], bad: [[0, /true or false/]] },
  'watcher.git_default_owner': { good: ['', 'acme'], bad: [['-evil', /may not start with "-"/], ['a/b', /GitHub owner name/]] },
  'watcher.git_default_host': { good: ['github.com', 'ghe.example.com:8443', '127.0.0.1:9418/base', '[::1]:22'], bad: [['-oProxyCommand=x', /a host name/], ['user@host', /no user@/], ['a b', /a host name/], ['', /non-empty/]] },
  'watcher.git_protocol': { good: ['ssh'], bad: [['ftp', /one of https, ssh/]] },
  'watcher.cleanup_non_git_dirs': { good: [false], bad: [['no', /true or false/]] },
  'watcher.runner_cmd': { good: ['codex', '/usr/local/bin/codex'], bad: [['-x', /program name/], ['co\ndex', /program name/], ['', /non-empty/]] },
  'watcher.runner_model': { good: ['gpt-5-codex', 'o3:mini', 'org/model.v2'], bad: [['--dangerously-bypass-approvals-and-sandbox', /a model name/], ['a b', /a model name/], [longName, /a model name/]] },
  'watcher.allowed_models': { good: [[], ['gpt-5', 'o3']], bad: [[['-m'], /allowed_models\[0\].*a model name/], [[5], /allowed_models\[0\]: got number 5, expected a string/]] },
  'watcher.runner_sandbox': { good: ['read-only', 'danger-full-access'], bad: [['none', /one of read-only, workspace-write, danger-full-access/]] },
  'watcher.runner_extra_args': { good: [['--config', 'x=1'], ['']], bad: [[[1], /runner_extra_args\[0\]: got number 1/], [['a\nb'], /without control characters/]] },
  'watcher.runner_timeout_seconds': { good: [0.5, 7200], bad: [[0, /number >= 0.1/], ['60', /number/]] },
  'watcher.runner_idle_timeout_seconds': { good: [0, 60], bad: [[-1, /number >= 0/]] },
  'watcher.runner_kill_grace_seconds': { good: [0, 5], bad: [[-1, /number >= 0/]] },
  'watcher.runner_max_tokens': { good: [0, 1, 2_000_000], bad: [[-1, /whole number >= 0/], [1.5, /whole number/], ['1M', /whole number/]] },
  'watcher.keep_incomplete_work': { good: [true, false], bad: [['no', /true or false/]] },
  'watcher.agent_isolation': { good: ['bwrap', 'none'], bad: [['docker', /one of bwrap, none/]] },
  'watcher.agent_max_processes': { good: [16, 4096], bad: [[15, /whole number >= 16/], [1.5, /whole number/]] },
  'watcher.agent_max_memory_bytes': { good: [64 * 1024 * 1024], bad: [[1024, /whole number >= 67108864/]] },
  'watcher.agent_max_file_bytes': { good: [1024 * 1024], bad: [[-1, /whole number >= 1048576/]] },
  'watcher.runner_secret_env': { good: [[], ['GH_TOKEN', '_X1']], bad: [[['1X'], /environment variable name/], [['A-B'], /environment variable name/], [[true], /expected a string/]] },
  'watcher.agent_runs_dir': { good: ['', 'docs/runs'], bad: [['../out', /inside the repository/], ['/abs', /inside the repository/], ['a\nb', /control characters/]] },
  'watcher.agent_branch_prefix': { good: ['codex/', 'bot-', 'ai/x/'], bad: [['-x/', /valid branch name.*may not start with "-"/], ['a..b/', /may not contain "\.\."/], ['a b/', /forbids/], ['x/.', /may not start with "\."/], ['a//', /"\/\/"/], ['x'.repeat(200), /longer than 255/]] },
  'watcher.max_parallel': { good: [1, 64], bad: [[0, /from 1 to 64/], [65, /from 1 to 64/]] },
  'watcher.prepare_ahead': { good: [0, 64, 'max_parallel'], bad: [[-1, /from 0 to 64 or max_parallel/], [65, /from 0 to 64 or max_parallel/], ['auto', /from 0 to 64 or max_parallel/], [1.5, /whole number/]] },
  'watcher.max_attempts': { good: [1], bad: [[0, /whole number >= 1/]] },
  'watcher.retry_backoff_seconds': { good: [0], bad: [[-5, /number >= 0/]] },
  'watcher.quiet_seconds': { good: [0, 2.5], bad: [[-1, /number >= 0/]] },
  // Renamed: read as watcher.quiet_seconds, checked the same, named as written.
  'watcher.settle_seconds': { good: [0, 2.5], bad: [[-1, /number >= 0/]] },
  'watcher.rescan_interval_seconds': { good: [0.1], bad: [[0, /number >= 0.1/]] },
  'watcher.shutdown_grace_seconds': { good: [0], bad: [[Infinity, /number >= 0/]] },
  'watcher.publisher': { good: ['none'], bad: [['github', /one of gh, none/]] },
  'watcher.gh_cmd': { good: ['gh', '/usr/bin/gh'], bad: [['--help', /program name/]] },
  'watcher.gh_host': { good: ['', 'ghe.example.com', '127.0.0.1:8443'], bad: [['-x', /host name/], ['h/p', /host name/]] },
  'watcher.pr_draft': { good: [true], bad: [['true', /true or false/]] },
  'watcher.pr_labels': { good: [['bot', 'needs review']], bad: [[[''], /pr_labels\[0\].*a label/], [['x'.repeat(51)], /a label/], [[7], /expected a string/]] },
  'watcher.commit_author_name': { good: ['Prompt Valet', 'Zoë'], bad: [['a\nb', /single-line name/], ['Evil <e@x>', /without < or >/], ['  ', /non-empty|single-line/]] },
  'watcher.commit_author_email': { good: ['bot@example.com'], bad: [['a b@x', /an email address/], ['<x@y>', /an email address/], ['x@y\n', /an email address/]] },
  'web.host': { good: ['127.0.0.1', '::', '0.0.0.0', 'localhost'], bad: [['-h', /host name/], ['a b', /host name/]] },
  'web.port': { good: [0, 65535], bad: [[65536, /from 0 to 65535/]] },
  'web.token': { good: ['', 's3cret'], bad: [['a\nb', /single line/]] },
  'web.token_file': { good: ['', '/etc/pv/token'], bad: [['/x\n', /control characters/]] },
  'web.socket': { good: ['', '/run/prompt-valet-web/web.sock'], bad: [['/run/x\n', /control characters/], [[], /a string/]] },
  'web.max_upload_bytes': { good: [1], bad: [[0, /whole number >= 1/]] },
  'file_server.kind': { good: ['copyparty'], bad: [['nginx', /one of copyparty, none/]] },
  'file_server.host': { good: ['0.0.0.0'], bad: [['x;y', /host name/]] },
  'file_server.port': { good: [1], bad: [[0, /from 1 to 65535/]] },
  'file_server.copyparty_cmd': { good: ['copyparty', '/opt/copyparty-sfx.py'], bad: [['-c', /program name/]] },
  'limits.max_record_bytes': { good: [4096, 1048576], bad: [[100, /whole number >= 4096/], ['1M', /whole number/]] },
  'limits.max_prompt_bytes': { good: [1, 1048576], bad: [[0, /whole number >= 1/], [1.5, /whole number/]] },
  'notify.webhooks': { good: [[], ['https://ntfy.sh/topic', 'slack:https://hooks.slack.com/services/T/B/x']], bad: [[['ftp://x.example/'], /notify\.webhooks\[0\]/], [[1], /expected a string/], ['https://x', /a list of strings/]] },
  'notify.timeout_seconds': { good: [0.5, 30], bad: [[0, /number >= 0.1/]] },
  'notify.retries': { good: [0, 10], bad: [[11, /from 0 to 10/], [-1, /from 0 to 10/]] },
  'notify.retry_backoff_seconds': { good: [0, 2.5], bad: [[-1, /number >= 0/]] },
  'notify.concurrency': { good: [1, 64], bad: [[0, /from 1 to 64/]] },
  'notify.drain_seconds': { good: [0, 30], bad: [['30', /number/]] },
  dispatch: { good: ['local', 'nats'], bad: [['queue', /one of local, nats/], [true, /one of local, nats/]] },
  'nats.servers': { good: [['nats://127.0.0.1:4222'], ['tls://a.example:4222', 'nats://b.example:4222']], bad: [[['http://x:4222'], /servers\[0\].*nats:\/\/host:port/], [['nats://'], /nats:\/\/host:port/], ['nats://x:4222', /a list/]] },
  'nats.creds_file': { good: ['', '/srv/prompt-valet/config/nats/worker.creds'], bad: [['/x\ny', /control characters/]] },
  'nats.nkey_seed_file': { good: ['', '/srv/prompt-valet/config/nats/worker.nk'], bad: [['/x\ty', /control characters/]] },
  'nats.tls_ca_file': { good: ['', '/etc/ssl/nats-ca.pem'], bad: [['/a\x1b[2Jb', /control characters/]] },
  'nats.jobs_stream': { good: ['PV_JOBS', 'jobs-2'], bad: [['PV.JOBS', /a stream name/], ['a b', /a stream name/], ['', /non-empty|a stream name/]] },
  'nats.results_stream': { good: ['PV_RESULTS'], bad: [['results>', /a stream name/], ['x/y', /a stream name/]] },
  'nats.replicas': { good: [1, 3, 5], bad: [[0, /from 1 to 5/], [6, /from 1 to 5/], [2.5, /whole number/]] },
  'nats.ack_wait_seconds': { good: [1, 60, 2.5], bad: [[0.5, /number >= 1/], ['60', /number/]] },
  'nats.max_deliveries': { good: [1, 100], bad: [[0, /from 1 to 100/], [101, /from 1 to 100/]] },
  'nats.reconcile_interval_seconds': { good: [0.5, 30], bad: [[0.1, /number >= 0.5/]] },
};

function rawWith(key: string, value: unknown): Record<string, unknown> {
  const [top, sub] = key.split('.');
  return sub === undefined ? { [top!]: value } : { [top!]: { [sub]: value } };
}

t.test('the table covers every key of the schema, and every renamed key', async (t) => {
  t.same(Object.keys(TABLE).sort(), [...Object.keys(CONFIG_SCHEMA), ...Object.keys(RENAMED_KEYS)].sort());
});

for (const [key, row] of Object.entries(TABLE)) {
  t.test(key, async (t) => {
    for (const good of row.good) {
      t.doesNotThrow(() => normaliseConfig(rawWith(key, good), 'c.yaml', '/'), `${JSON.stringify(good)} accepted`);
    }
    for (const [bad, re] of row.bad) {
      let error: unknown;
      try {
        normaliseConfig(rawWith(key, bad), 'c.yaml', '/');
      } catch (err) {
        error = err;
      }
      t.ok(error instanceof ConfigError, `${JSON.stringify(bad)} refused`);
      const message = (error as Error | undefined)?.message ?? '';
      t.match(message, new RegExp(`^c\\.yaml: ${key.replace(/\./g, '\\.')}(\\[\\d+\\])?: got `), `${JSON.stringify(bad)}: the line names the key`);
      t.match(message, re, `${JSON.stringify(bad)}: says what was expected`);
      t.notMatch(message, /\n/, 'one line');
      t.equal((error as ConfigError | undefined)?.exitCode, 78);
    }
  });
}

t.test('git_default_host is a folder for git_protocol file', async (t) => {
  t.doesNotThrow(() => normaliseConfig({ watcher: { git_protocol: 'file', git_default_host: '/srv/my origins' } }, 'c.yaml', '/'));
  t.throws(() => normaliseConfig({ watcher: { git_protocol: 'file', git_default_host: '-x' } }, 'c.yaml', '/'), { message: /git_default_host.*not an option/ });
  t.throws(() => normaliseConfig({ watcher: { git_protocol: 'https', git_default_host: '/srv/origins x' } }, 'c.yaml', '/'), { message: /git_default_host.*git_protocol https/ });
});
