import * as fs from 'node:fs';
import YAML from 'yaml';
import { CONFIG_SCHEMA, ConfigError, normaliseConfig } from '@prompt-valet/core';
import { ensureFile } from './fs-actions.js';
import type { Reporter } from './report.js';

/**
 * The installed prompt-valet.yaml is the project's configs/prompt-valet.yaml
 * with the operator's choices set in it. Values are set through the YAML
 * document, so every comment of the template survives whatever its wording.
 */
export interface ConfigChoices {
  owner?: string;
  host?: string;
  protocol?: string;
  inboxMode?: string;
  fileServer?: string;
  fileServerPort?: number;
  /** web.socket: set by --web, so pv-web listens where only the drop group may connect */
  webSocket?: string;
  inbox: string;
  processed: string;
  finished: string;
  reposRoot: string;
}

export function renderConfig(template: string, c: ConfigChoices): string {
  const doc = YAML.parseDocument(template);
  if (doc.errors.length > 0) throw new ConfigError(`configs/prompt-valet.yaml: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const set = (key: string, value: unknown) => {
    if (value !== undefined) doc.setIn(key.split('.'), value);
  };
  set('inbox', c.inbox);
  set('processed', c.processed);
  set('finished', c.finished);
  set('repos_root', c.reposRoot);
  set('watcher.git_default_owner', c.owner);
  // The legacy top-level key names the same owner; two different owners
  // would only earn a warning at every start.
  if (c.owner !== undefined && doc.has('git_owner')) set('git_owner', c.owner);
  set('watcher.git_default_host', c.host);
  set('watcher.git_protocol', c.protocol);
  set('inbox_mode', c.inboxMode);
  set('file_server.kind', c.fileServer);
  set('file_server.port', c.fileServerPort);
  set('web.socket', c.webSocket);
  return doc.toString();
}

/**
 * The choices an existing config already holds, so that a rerun without the
 * original flags renders the same file (and reports it unchanged).
 */
export function choicesFromConfig(text: string): Partial<ConfigChoices> {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) return {};
  const get = (key: string): unknown => doc.getIn(key.split('.'));
  const out: Partial<ConfigChoices> = {};
  const str = (key: string, field: 'owner' | 'host' | 'protocol' | 'inboxMode' | 'fileServer' | 'webSocket') => {
    const v = get(key);
    if (typeof v === 'string') out[field] = v;
  };
  str('watcher.git_default_owner', 'owner');
  if (!out.owner) str('git_owner', 'owner');
  str('watcher.git_default_host', 'host');
  str('watcher.git_protocol', 'protocol');
  str('inbox_mode', 'inboxMode');
  str('file_server.kind', 'fileServer');
  str('web.socket', 'webSocket');
  if (out.webSocket === '') delete out.webSocket;
  const port = get('file_server.port');
  if (typeof port === 'number') out.fileServerPort = port;
  return out;
}

/** Keys of the schema that a config file does not spell out (their defaults apply). */
export function missingKeys(text: string): string[] {
  const doc = YAML.parseDocument(text);
  return Object.keys(CONFIG_SCHEMA).filter((k) => !doc.hasIn(k.split('.')));
}

/** Unknown keys and invalid values, as loadConfig would report them. */
export function checkConfigText(text: string, file: string): { warnings: string[]; error?: string } {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) return { warnings: [], error: `${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}` };
  try {
    return { warnings: normaliseConfig(doc.toJS(), file, '/').warnings };
  } catch (err) {
    if (err instanceof ConfigError) return { warnings: [], error: err.message };
    throw err;
  }
}

/**
 * Write the config, or keep the operator's: an existing file is never
 * touched. When it differs from what would be written, the new rendering goes
 * beside it as `<file>.new` and missing or unknown keys are reported.
 */
export async function installConfig(r: Reporter, diskFile: string, rendered: string): Promise<void> {
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(diskFile, 'utf8');
  } catch {
    existing = undefined;
  }
  if (existing === undefined) {
    await ensureFile(r, diskFile, rendered, 0o640, 'from configs/prompt-valet.yaml');
    return;
  }
  if (existing === rendered) {
    r.emit('unchanged', diskFile);
    return;
  }
  const newFile = `${diskFile}.new`;
  const outcome = await ensureFile(r, newFile, rendered, 0o640, 'what this install would have written; compare and merge by hand');
  r.emit(outcome === 'unchanged' ? 'unchanged' : 'skipped', diskFile, 'kept as the operator left it');
  const missing = missingKeys(existing);
  if (missing.length > 0) r.emit('warning', diskFile, `keys not set (defaults apply): ${missing.join(', ')}`);
  const check = checkConfigText(existing, diskFile);
  for (const w of check.warnings) r.emit('warning', diskFile, w);
  if (check.error) r.emit('warning', diskFile, check.error);
}
