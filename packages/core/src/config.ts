import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { EX, ToolError } from './exit.js';
import { DEFAULT_MAX_RECORD_BYTES } from './records.js';
import * as use from './value-checks.js';
import type { ValueCheck } from './value-checks.js';
import { parseWebhook } from './webhooks.js';

/**
 * prompt-valet.yaml: loading, defaults, legacy normalisation and validation.
 * The schema below is the single list of keys; configs/prompt-valet.yaml
 * documents each one for operators and a test keeps the two in step.
 */
export const DEFAULT_CONFIG_PATH = '/srv/prompt-valet/config/prompt-valet.yaml';

export type InboxMode = 'legacy_single_owner' | 'multi_owner';
export type BranchMode = 'all' | 'whitelist' | 'blacklist' | 'both';
export type GitProtocol = 'https' | 'ssh' | 'git' | 'http' | 'file';
export type Publisher = 'gh' | 'none';
/** codex's --sandbox values, from the strictest to the widest */
export const SANDBOX_LEVELS = ['read-only', 'workspace-write', 'danger-full-access'] as const;
export type Sandbox = (typeof SANDBOX_LEVELS)[number];
export type AgentIsolation = 'bwrap' | 'none';
/** watcher.prepare_ahead's default: as many pipelines ahead as agents run at once */
export const PREPARE_AHEAD_AS_MAX_PARALLEL = 'max_parallel';

export interface TreeBuilderConfig {
  branch_mode: BranchMode;
  branch_whitelist: string[];
  branch_blacklist: string[];
  branch_name_blacklist: string[];
  scan_interval_seconds: number;
  eager_repos: boolean;
  /** also make folders for the owner's repositories that are upstream only (gh repo list + ls-remote) */
  greedy_inboxes: boolean;
  /** mirror agent branches (`codex/…` → `codex~…`) as inbox folders */
  mirror_agent_branches: boolean;
}

export interface NotifyConfig {
  /** webhook entries: a URL, optionally prefixed by its kind (`slack:https://…`); see core webhooks.ts */
  webhooks: string[];
  timeout_seconds: number;
  retries: number;
  retry_backoff_seconds: number;
  concurrency: number;
  drain_seconds: number;
}

export interface WatcherConfig {
  auto_clone_missing_repos: boolean;
  git_default_owner: string;
  git_default_host: string;
  git_protocol: GitProtocol;
  cleanup_non_git_dirs: boolean;
  runner_cmd: string;
  runner_model: string;
  /** models a prompt's front matter may choose besides runner_model */
  allowed_models: string[];
  runner_sandbox: Sandbox;
  runner_extra_args: string[];
  runner_timeout_seconds: number;
  runner_idle_timeout_seconds: number;
  runner_kill_grace_seconds: number;
  runner_secret_env: string[];
  /** the most tokens one run may use (codex's own count); 0 = no cap. Front matter max_tokens may only lower it */
  runner_max_tokens: number;
  /** a run stopped by its time, idle or token limit or the operator's abort: push its work and open a draft PR */
  keep_incomplete_work: boolean;
  /** bwrap: every agent run in a bubblewrap jail (docs/security.md); none: the operator's explicit choice */
  agent_isolation: AgentIsolation;
  /** processes and threads one run may have at once (cgroup pids.max, RLIMIT_NPROC in the jail) */
  agent_max_processes: number;
  /** memory one run may use (cgroup memory.max) */
  agent_max_memory_bytes: number;
  /** largest file one run may write (RLIMIT_FSIZE) */
  agent_max_file_bytes: number;
  agent_runs_dir: string;
  agent_branch_prefix: string;
  /** agents running at once (watcher.prepare_ahead more pipelines may claim and clone ahead, docs/lifecycle.md "Agent slots") */
  max_parallel: number;
  /** pipelines that claim, resolve and clone ahead of a free agent slot: a number, or 'max_parallel' (as many as max_parallel) */
  prepare_ahead: number | typeof PREPARE_AHEAD_AS_MAX_PARALLEL;
  max_attempts: number;
  retry_backoff_seconds: number;
  /** a prompt counts as complete once unchanged this long (the quiet window; once watcher.settle_seconds) */
  quiet_seconds: number;
  rescan_interval_seconds: number;
  shutdown_grace_seconds: number;
  publisher: Publisher;
  gh_cmd: string;
  /** the GitHub host gh talks to ('' = git_default_host; GH_HOST in the environment wins) */
  gh_host: string;
  pr_draft: boolean;
  pr_labels: string[];
  commit_author_name: string;
  commit_author_email: string;
}

export interface WebConfig {
  host: string;
  port: number;
  token: string;
  token_file: string;
  /** a Unix socket path: when set, pv-web listens there (mode 0660) instead of on host:port */
  socket: string;
  max_upload_bytes: number;
}

export interface LimitsConfig {
  /** longest record line a tool reads; a longer one becomes a record_too_large error record */
  max_record_bytes: number;
  /** largest prompt file pv-resolve reads; a larger one fails as prompt_too_large */
  max_prompt_bytes: number;
}

/** local: every run on this host; nats: runs go to workers over NATS JetStream (docs/scale-out.md) */
export type Dispatch = 'local' | 'nats';

/** The NATS JetStream work queue of `dispatch: nats` (pv-queue, docs/scale-out.md). */
export interface NatsConfig {
  /** nats:// or tls:// URLs of the cluster's servers */
  servers: string[];
  /** this host's NATS credentials file (.creds: JWT + nkey seed); '' = none */
  creds_file: string;
  /** this host's NATS user nkey seed file (`SU…`, made by pv-install --role valet); '' = none; not with creds_file */
  nkey_seed_file: string;
  /** CA bundle the servers' TLS certificates are checked against; '' = system CAs, or no TLS */
  tls_ca_file: string;
  /** work-queue stream of jobs (subjects `jobs.<run id>`) */
  jobs_stream: string;
  /** stream of results coming back (subjects `results.<run id>`) */
  results_stream: string;
  /** copies of each stream: 3 in a 3-node cluster, so losing a node loses nothing */
  replicas: number;
  /** the lease: a job not acked or renewed this long goes to another worker */
  ack_wait_seconds: number;
  /** deliveries of one job before it ends as an error */
  max_deliveries: number;
  /** how often pv-queue recv checks dispatched claims against the stream */
  reconcile_interval_seconds: number;
}

export type FileServerKind = 'copyparty' | 'none';

export interface FileServerConfig {
  kind: FileServerKind;
  host: string;
  port: number;
  copyparty_cmd: string;
}

export interface ValetConfig {
  inbox: string;
  processed: string;
  finished: string;
  repos_root: string;
  /** the effective default owner (legacy `git_owner`, else `watcher.git_default_owner`) */
  git_owner: string;
  inbox_mode: InboxMode;
  tree_builder: TreeBuilderConfig;
  watcher: WatcherConfig;
  web: WebConfig;
  file_server: FileServerConfig;
  limits: LimitsConfig;
  notify: NotifyConfig;
  dispatch: Dispatch;
  nats: NatsConfig;
}

export interface LoadedConfig {
  config: ValetConfig;
  /** the file read, or undefined when none existed and defaults were used */
  path: string | undefined;
  /** unknown keys and other things a person should know; not fatal */
  warnings: string[];
  /** what configHandoff hands to the tools this one starts (set when read from a file) */
  source?: { identity: string; raw: unknown };
}

type Kind =
  | { type: 'string'; allowEmpty?: boolean }
  | { type: 'path' }
  | { type: 'int'; min: number; max?: number; orWord?: string }
  | { type: 'number'; min: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'string[]' };

interface KeySpec {
  kind: Kind;
  default: unknown;
  /** what the value will be used for, checked on a string and on each item of a list */
  use?: ValueCheck;
}

const str: Kind = { type: 'string' };
const strOrEmpty: Kind = { type: 'string', allowEmpty: true };
const list: Kind = { type: 'string[]' };
const bool: Kind = { type: 'bool' };
const int = (min: number, max?: number): Kind => (max === undefined ? { type: 'int', min } : { type: 'int', min, max });
const num = (min: number): Kind => ({ type: 'number', min });
const pathKind: Kind = { type: 'path' };

/** A notify.webhooks entry: `[kind:]http(s)://…` (core webhooks.ts). */
const webhookEntry: ValueCheck = (v) => {
  const parsed = parseWebhook(v);
  return parsed.ok ? undefined : `a webhook URL, [ntfy:|slack:|discord:|json:]http(s)://… (${parsed.reason})`;
};

/** A nats.servers entry: nats://, tls://, ws:// or wss:// with a host. */
const natsUrl: ValueCheck = (v) => {
  try {
    const u = new URL(v);
    return /^(nats|tls|ws|wss):$/.test(u.protocol) && u.hostname ? undefined : 'a nats://host:port (or tls://) URL';
  } catch {
    return 'a nats://host:port (or tls://) URL';
  }
};

/** JetStream stream names: no spaces, dots, wildcards or path separators. */
const streamName: ValueCheck = (v) => (/^[A-Za-z0-9_-]{1,64}$/.test(v) ? undefined : 'a stream name (letters, digits, _ and -)');

/** Every key, with its type and default. Sections are dotted prefixes. */
/**
 * Keys renamed since they were first shipped: the old name is still read
 * (checked as the new key), with a one-line warning naming the new one.
 * "settle" now means only the final step (pv-settle).
 */
export const RENAMED_KEYS: Record<string, string> = {
  'watcher.settle_seconds': 'watcher.quiet_seconds',
};

export const CONFIG_SCHEMA: Record<string, KeySpec> = {
  inbox: { kind: pathKind, default: '/srv/prompt-valet/inbox', use: use.pathText },
  processed: { kind: pathKind, default: '/srv/prompt-valet/processed', use: use.pathText },
  finished: { kind: pathKind, default: '/srv/prompt-valet/finished', use: use.pathText },
  repos_root: { kind: pathKind, default: '/srv/repos', use: use.pathText },
  git_owner: { kind: strOrEmpty, default: '', use: use.ownerOrEmpty },
  inbox_mode: { kind: { type: 'enum', values: ['legacy_single_owner', 'multi_owner'] }, default: 'legacy_single_owner' },
  // Legacy aliases of watcher.git_default_host / watcher.git_protocol (the original's layout); '' = not set.
  git_host: { kind: strOrEmpty, default: '', use: use.urlHostOrEmpty },
  git_protocol: { kind: { type: 'enum', values: ['', 'https', 'ssh', 'git', 'http', 'file'] }, default: '' },

  'tree_builder.branch_mode': { kind: { type: 'enum', values: ['all', 'whitelist', 'blacklist', 'both'] }, default: 'all' },
  'tree_builder.branch_whitelist': { kind: list, default: [], use: use.branchPattern },
  'tree_builder.branch_blacklist': { kind: list, default: [], use: use.branchPattern },
  'tree_builder.branch_name_blacklist': { kind: list, default: ['HEAD'], use: use.branchPattern },
  'tree_builder.scan_interval_seconds': { kind: int(1), default: 60 },
  'tree_builder.eager_repos': { kind: bool, default: false },
  'tree_builder.greedy_inboxes': { kind: bool, default: false },
  'tree_builder.mirror_agent_branches': { kind: bool, default: true },

  'watcher.auto_clone_missing_repos': { kind: bool, default: true },
  'watcher.git_default_owner': { kind: strOrEmpty, default: '', use: use.ownerOrEmpty },
  // Checked with git_protocol in mind (a folder for file://), after all keys are read.
  'watcher.git_default_host': { kind: str, default: 'github.com', use: use.pathText },
  'watcher.git_protocol': { kind: { type: 'enum', values: ['https', 'ssh', 'git', 'http', 'file'] }, default: 'https' },
  'watcher.cleanup_non_git_dirs': { kind: bool, default: true },
  'watcher.runner_cmd': { kind: str, default: 'codex', use: use.commandName },
  'watcher.runner_model': { kind: str, default: 'gpt-5.1-codex-mini', use: use.modelName },
  'watcher.allowed_models': { kind: list, default: [], use: use.modelName },
  // The bwrap jail is the boundary (docs/security.md); codex's own sandbox inside it is optional.
  'watcher.runner_sandbox': { kind: { type: 'enum', values: SANDBOX_LEVELS }, default: 'danger-full-access' },
  'watcher.runner_extra_args': { kind: list, default: [], use: use.commandArgument },
  // Fractional seconds are allowed so tests can use sub-second limits.
  'watcher.runner_timeout_seconds': { kind: num(0.1), default: 3600 },
  /** 0 turns the idle limit off */
  'watcher.runner_idle_timeout_seconds': { kind: num(0), default: 900 },
  'watcher.runner_kill_grace_seconds': { kind: num(0), default: 10 },
  // codex reports usage per model response: the agent is stopped at the first one past the cap.
  'watcher.runner_max_tokens': { kind: int(0), default: 0 },
  'watcher.keep_incomplete_work': { kind: bool, default: true },
  'watcher.runner_secret_env': { kind: list, default: ['GH_TOKEN', 'GITHUB_TOKEN', 'GH_ENTERPRISE_TOKEN', 'GITHUB_ENTERPRISE_TOKEN'], use: use.envVarName },
  'watcher.agent_isolation': { kind: { type: 'enum', values: ['bwrap', 'none'] }, default: 'bwrap' },
  'watcher.agent_max_processes': { kind: int(16), default: 512 },
  'watcher.agent_max_memory_bytes': { kind: int(64 * 1024 * 1024), default: 4 * 1024 * 1024 * 1024 },
  'watcher.agent_max_file_bytes': { kind: int(1024 * 1024), default: 1024 * 1024 * 1024 },
  'watcher.agent_runs_dir': { kind: strOrEmpty, default: 'docs/AGENT_RUNS', use: use.pathText },
  'watcher.agent_branch_prefix': { kind: str, default: 'codex/', use: use.agentBranchPrefix },
  'watcher.max_parallel': { kind: int(1, 64), default: 2 },
  // The default follows max_parallel (also --max-parallel), so one key sets both for most operators.
  'watcher.prepare_ahead': { kind: { type: 'int', min: 0, max: 64, orWord: PREPARE_AHEAD_AS_MAX_PARALLEL }, default: PREPARE_AHEAD_AS_MAX_PARALLEL },
  'watcher.max_attempts': { kind: int(1), default: 3 },
  'watcher.retry_backoff_seconds': { kind: num(0), default: 60 },
  'watcher.quiet_seconds': { kind: num(0), default: 1 },
  'watcher.rescan_interval_seconds': { kind: num(0.1), default: 60 },
  'watcher.shutdown_grace_seconds': { kind: num(0), default: 30 },
  'watcher.publisher': { kind: { type: 'enum', values: ['gh', 'none'] }, default: 'gh' },
  'watcher.gh_cmd': { kind: str, default: 'gh', use: use.commandName },
  'watcher.gh_host': { kind: strOrEmpty, default: '', use: use.hostOrEmpty },
  'watcher.pr_draft': { kind: bool, default: false },
  'watcher.pr_labels': { kind: list, default: [], use: use.labelName },
  'watcher.commit_author_name': { kind: str, default: 'Prompt Valet', use: use.authorName },
  'watcher.commit_author_email': { kind: str, default: 'prompt-valet@localhost', use: use.authorEmail },

  'web.host': { kind: str, default: '127.0.0.1', use: use.hostName },
  'web.port': { kind: int(0, 65535), default: 8088 },
  'web.token': { kind: strOrEmpty, default: '', use: use.singleLine },
  'web.token_file': { kind: strOrEmpty, default: '', use: use.pathText },
  'web.socket': { kind: strOrEmpty, default: '', use: use.pathText },
  'web.max_upload_bytes': { kind: int(1), default: 1048576 },

  'file_server.kind': { kind: { type: 'enum', values: ['copyparty', 'none'] }, default: 'none' },
  'file_server.host': { kind: str, default: '0.0.0.0', use: use.hostName },
  'file_server.port': { kind: int(1, 65535), default: 3923 },
  'file_server.copyparty_cmd': { kind: str, default: 'copyparty', use: use.commandName },

  // A record is a few KiB; the cap only has to stop a runaway line from costing memory.
  'limits.max_record_bytes': { kind: int(4096), default: DEFAULT_MAX_RECORD_BYTES },
  'limits.max_prompt_bytes': { kind: int(1), default: 1048576 },

  'notify.webhooks': { kind: list, default: [], use: webhookEntry },
  'notify.timeout_seconds': { kind: num(0.1), default: 10 },
  'notify.retries': { kind: int(0, 10), default: 2 },
  'notify.retry_backoff_seconds': { kind: num(0), default: 2 },
  'notify.concurrency': { kind: int(1, 64), default: 4 },
  'notify.drain_seconds': { kind: num(0), default: 30 },

  dispatch: { kind: { type: 'enum', values: ['local', 'nats'] }, default: 'local' },
  'nats.servers': { kind: list, default: ['nats://127.0.0.1:4222'], use: natsUrl },
  'nats.creds_file': { kind: strOrEmpty, default: '', use: use.pathText },
  'nats.nkey_seed_file': { kind: strOrEmpty, default: '', use: use.pathText },
  'nats.tls_ca_file': { kind: strOrEmpty, default: '', use: use.pathText },
  'nats.jobs_stream': { kind: str, default: 'PV_JOBS', use: streamName },
  'nats.results_stream': { kind: str, default: 'PV_RESULTS', use: streamName },
  'nats.replicas': { kind: int(1, 5), default: 1 },
  // Fractional seconds so tests can use short leases; the worker renews at a third of it.
  'nats.ack_wait_seconds': { kind: num(1), default: 60 },
  'nats.max_deliveries': { kind: int(1, 100), default: 3 },
  'nats.reconcile_interval_seconds': { kind: num(0.5), default: 30 },
};

const SECTIONS = new Set(Object.keys(CONFIG_SCHEMA).filter((k) => k.includes('.')).map((k) => k.split('.')[0]!));

/** A configuration that cannot be used. Exit 78, one clear line. */
export class ConfigError extends ToolError {
  constructor(message: string) {
    super('bad_config', message, EX.CONFIG);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list (${JSON.stringify(v).slice(0, 60)})`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function expected(kind: Kind): string {
  switch (kind.type) {
    case 'string':
      return kind.allowEmpty ? 'a string' : 'a non-empty string';
    case 'path':
      return 'a path (string)';
    case 'int': {
      const range = kind.max === undefined ? `a whole number >= ${kind.min}` : `a whole number from ${kind.min} to ${kind.max}`;
      return kind.orWord === undefined ? range : `${range} or ${kind.orWord}`;
    }
    case 'number':
      return `a number >= ${kind.min}`;
    case 'bool':
      return 'true or false';
    case 'enum':
      return `one of ${kind.values.join(', ')}`;
    case 'string[]':
      return 'a list of strings';
  }
}

function checkValue(key: string, spec: KeySpec, v: unknown, file: string): unknown {
  const { kind } = spec;
  const fail = (what = expected(kind), where = key, got: unknown = v): never => {
    throw new ConfigError(`${file}: ${where}: got ${describe(got)}, expected ${what}`);
  };
  const usable = (s: string, where = key): string => {
    const problem = spec.use?.(s);
    return problem === undefined ? s : fail(problem, where, s);
  };
  switch (kind.type) {
    case 'string':
    case 'path':
      if (typeof v === 'number' && kind.type === 'string') return usable(String(v));
      if (typeof v !== 'string') return fail();
      if (kind.type === 'path' || !kind.allowEmpty) {
        if (v.trim() === '') return fail();
      }
      return usable(v);
    case 'int':
      if (kind.orWord !== undefined && v === kind.orWord) return v;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < kind.min || (kind.max !== undefined && v > kind.max)) return fail();
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < kind.min) return fail();
      return v;
    case 'bool':
      if (typeof v !== 'boolean') return fail();
      return v;
    case 'enum':
      if (typeof v !== 'string' || !kind.values.includes(v)) return fail();
      return v;
    case 'string[]':
      // An empty YAML key (`branch_whitelist:`) reads as null: the empty list.
      if (v === null) return [];
      if (!Array.isArray(v)) return fail();
      // Items must be strings as written: `[1, 2]` is a mistake, not two names.
      return v.map((item: unknown, i) => (typeof item === 'string' ? usable(item, `${key}[${i}]`) : fail('a string', `${key}[${i}]`, item)));
  }
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    cur[p] ??= {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

export function defaultConfigObject(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) setPath(out, key, structuredClone(spec.default));
  return out;
}

/**
 * Validate a parsed YAML document against the schema and merge defaults.
 * `baseDir` is where relative paths are anchored (the config file's folder).
 */
export function normaliseConfig(raw: unknown, file: string, baseDir: string): { config: ValetConfig; warnings: string[] } {
  const warnings: string[] = [];
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${file}: the top level must be a mapping of keys, got ${describe(raw)}`);
  }
  const out = defaultConfigObject();
  const given = new Set<string>();
  const renamed: { old: string; current: string; value: unknown }[] = [];
  for (const [top, value] of Object.entries(raw as Record<string, unknown>)) {
    if (SECTIONS.has(top)) {
      if (value === null) continue; // an empty section keeps its defaults
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(`${file}: ${top}: got ${describe(value)}, expected a mapping of keys`);
      }
      for (const [sub, subValue] of Object.entries(value as Record<string, unknown>)) {
        const key = `${top}.${sub}`;
        const spec = CONFIG_SCHEMA[key];
        const renamedTo = RENAMED_KEYS[key];
        if (renamedTo) {
          renamed.push({ old: key, current: renamedTo, value: checkValue(key, CONFIG_SCHEMA[renamedTo]!, subValue, file) });
          continue;
        }
        if (!spec) {
          warnings.push(`${file}: unknown key ${key} (ignored)`);
          continue;
        }
        setPath(out, key, checkValue(key, spec, subValue, file));
        given.add(key);
      }
      continue;
    }
    const spec = CONFIG_SCHEMA[top];
    if (!spec) {
      warnings.push(`${file}: unknown key ${top} (ignored)`);
      continue;
    }
    out[top] = checkValue(top, spec, value, file);
    given.add(top);
  }

  for (const { old, current, value } of renamed) {
    if (given.has(current)) {
      warnings.push(`${file}: ${old} is deprecated and ignored: ${current} is set`);
      continue;
    }
    warnings.push(`${file}: ${old} is deprecated; call it ${current}`);
    setPath(out, current, value);
  }

  for (const key of ['inbox', 'processed', 'finished', 'repos_root'] as const) {
    out[key] = path.resolve(baseDir, out[key] as string);
  }

  // Legacy: the top-level git_owner and watcher.git_default_owner name the
  // same thing; either one fills the other.
  const watcher = out.watcher as WatcherConfig;
  const legacyOwner = out.git_owner as string;
  if (legacyOwner && watcher.git_default_owner && legacyOwner !== watcher.git_default_owner) {
    warnings.push(
      `${file}: git_owner (${legacyOwner}) and watcher.git_default_owner (${watcher.git_default_owner}) differ; using git_owner`,
    );
  }
  const owner = legacyOwner || watcher.git_default_owner;
  out.git_owner = owner;
  watcher.git_default_owner = owner;
  // The original's top-level git_host and git_protocol are the same kind of
  // alias: given, they win over the watcher keys (as git_owner does).
  for (const [legacy, current] of [['git_host', 'git_default_host'], ['git_protocol', 'git_protocol']] as const) {
    const value = out[legacy] as string;
    if (!value) continue;
    const key = `watcher.${current}`;
    if (given.has(key) && watcher[current] !== value) {
      warnings.push(`${file}: ${legacy} (${value}) and ${key} (${watcher[current]}) differ; using ${legacy}`);
    }
    (watcher as unknown as Record<string, string>)[current] = value;
  }

  const config = out as unknown as ValetConfig;
  if (config.tree_builder.branch_mode !== 'all' && config.tree_builder.branch_mode !== 'blacklist'
      && config.tree_builder.branch_whitelist.length === 0) {
    warnings.push(`${file}: tree_builder.branch_mode is ${config.tree_builder.branch_mode} but branch_whitelist is empty: no branch will be mirrored`);
  }
  if (config.watcher.agent_runs_dir) {
    const rel = config.watcher.agent_runs_dir;
    if (path.isAbsolute(rel) || rel.split('/').includes('..')) {
      throw new ConfigError(`${file}: watcher.agent_runs_dir: got ${describe(rel)}, expected a path inside the repository (relative, no "..")`);
    }
  }
  const host = config.watcher.git_default_host;
  if (config.watcher.git_protocol !== 'file') {
    const problem = use.urlHost(host);
    if (problem) throw new ConfigError(`${file}: watcher.git_default_host: got ${describe(host)}, expected ${problem} (git_protocol ${config.watcher.git_protocol})`);
  } else if (host.startsWith('-')) {
    throw new ConfigError(`${file}: watcher.git_default_host: got ${describe(host)}, expected a folder (git_protocol file), not an option`);
  }
  return { config, warnings };
}

export interface LoadConfigOptions {
  /** from --config */
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** when no file exists at the default path, use the defaults instead of failing */
  allowMissing?: boolean;
}

/**
 * Load the configuration: `--config`, else PV_CONFIG, else the installed
 * default path. A file named explicitly must exist; the default path may be
 * missing when `allowMissing` is set (defaults are used).
 */
export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? (env.PV_CONFIG || undefined);
  const file = path.resolve(explicit ?? DEFAULT_CONFIG_PATH);
  let text: string;
  let identity: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      identity = fileIdentity(fs.fstatSync(fd, { bigint: true }));
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit && opts.allowMissing) {
      const { config, warnings } = normaliseConfig({}, '(defaults)', process.cwd());
      return { config, path: undefined, warnings };
    }
    if (code === 'ENOENT') {
      throw new ConfigError(`${file}: no such config file${explicit ? '' : ' (set --config or PV_CONFIG)'}`);
    }
    throw new ConfigError(`${file}: cannot read config: ${(err as Error).message}`);
  }
  let raw = handedDown(env, file, identity);
  if (raw === undefined) {
    try {
      const doc = YAML.parseDocument(text, { prettyErrors: true });
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'somewhere';
        throw new ConfigError(`${file}: not valid YAML at ${where}: ${e.message.split('\n')[0]}`);
      }
      raw = doc.toJS() as unknown;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const { config, warnings } = normaliseConfig(raw, file, path.dirname(file));
  return { config, path: file, warnings, source: { identity, raw } };
}

/**
 * The parsed configuration, handed by a tool to the tools it starts
 * (pv-watcher to each pipeline's steps) in this variable, so that six
 * processes per run do not parse the same YAML again: 5 ms each for a
 * short file, 12-17 ms for the documented example (issue 17). Only YAML
 * parsing is skipped: the receiver still reads the file, and validates and
 * normalises what it was handed exactly as if it had parsed it. It is used
 * only for the same file, unchanged — same device, inode, size, mtime and
 * ctime (nanoseconds) as the sender saw — so an edited config is parsed
 * afresh. Whoever can set a tool's environment can also pass it --config,
 * so this gives no one a new way to change a tool's configuration. Never
 * passed to the agent (pv-run-codex's VALET_ONLY_ENV).
 */
export const CONFIG_HANDOFF_ENV = 'PV_CONFIG_PARSED';

interface ConfigHandoff {
  v: 1;
  file: string;
  identity: string;
  raw: unknown;
}

/** dev:ino:size:mtime:ctime, in nanoseconds: any write to the file changes it. */
function fileIdentity(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The value of CONFIG_HANDOFF_ENV for the tools `loaded`'s reader starts;
 * undefined when there is nothing to hand down (defaults, no file), or when
 * the parsed YAML does not survive JSON unchanged (`.inf`, say): then each
 * tool parses the file itself.
 */
export function configHandoff(loaded: LoadedConfig): string | undefined {
  if (!loaded.path || !loaded.source) return undefined;
  const value: ConfigHandoff = { v: 1, file: loaded.path, identity: loaded.source.identity, raw: loaded.source.raw };
  const json = JSON.stringify(value);
  return isDeepStrictEqual((JSON.parse(json) as ConfigHandoff).raw, loaded.source.raw) ? json : undefined;
}

/** `env` for a child tool: with CONFIG_HANDOFF_ENV set from `loaded` when there is one to hand down. */
export function envWithConfigHandoff(env: NodeJS.ProcessEnv, loaded: LoadedConfig | undefined): NodeJS.ProcessEnv {
  const handoff = loaded ? configHandoff(loaded) : undefined;
  if (handoff === undefined) {
    const { [CONFIG_HANDOFF_ENV]: _ours, ...rest } = env;
    return rest;
  }
  return { ...env, [CONFIG_HANDOFF_ENV]: handoff };
}

/** The raw configuration handed down for exactly this file as it is now, else undefined. */
function handedDown(env: NodeJS.ProcessEnv, file: string, identity: string): unknown {
  const text = env[CONFIG_HANDOFF_ENV];
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<ConfigHandoff> | null;
    if (value?.v !== 1 || value.file !== file || value.identity !== identity || !('raw' in value)) return undefined;
    return value.raw;
  } catch (err) {
    // A garbled value is as good as none: the file is parsed.
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}
