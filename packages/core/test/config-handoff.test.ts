import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG_HANDOFF_ENV, ConfigError, configHandoff, envWithConfigHandoff, loadConfig } from '../src/config.js';
import { REPO_ROOT_FOR_TESTS, tmpConfig } from './paths.js';

// pv-watcher hands its parsed config to the steps it starts (CONFIG_HANDOFF_ENV);
// a step uses it only for the same file, unchanged, and still validates it.

const TEXT = 'git_owner: acme\nwatcher:\n  max_parallel: 3\n';

/** The handoff a parent made, with its raw configuration changed as `edit` says (to see which one a child used). */
function handoffWith(file: string, edit: (raw: Record<string, unknown>) => void): string {
  const value = JSON.parse(configHandoff(loadConfig({ path: file, env: {} }))!) as { raw: Record<string, unknown> };
  edit(value.raw);
  return JSON.stringify(value);
}

t.test('the same file, unchanged: the handed-down configuration is used (the YAML is not parsed again)', async (t) => {
  const file = tmpConfig(t, TEXT);
  const env = { [CONFIG_HANDOFF_ENV]: handoffWith(file, (raw) => (raw.git_owner = 'handed-down')) };
  const loaded = loadConfig({ path: file, env });
  t.equal(loaded.config.git_owner, 'handed-down', 'the value came from the handoff, so nothing was parsed');
  t.equal(loaded.config.watcher.max_parallel, 3);
  t.equal(loaded.path, file);
});

t.test('a handoff gives exactly what parsing gives, for the shipped example too', async (t) => {
  for (const file of [tmpConfig(t, TEXT), path.join(REPO_ROOT_FOR_TESTS, 'configs', 'prompt-valet.yaml')]) {
    const parsed = loadConfig({ path: file, env: {} });
    const handoff = configHandoff(parsed);
    t.ok(handoff, `${path.basename(path.dirname(file))}: a handoff is made`);
    const handed = loadConfig({ path: file, env: { [CONFIG_HANDOFF_ENV]: handoff } });
    t.same(handed.config, parsed.config, 'same configuration');
    t.same(handed.warnings, parsed.warnings, 'same warnings');
  }
});

t.test('an edited file is parsed afresh: the handoff is for the file as it was', async (t) => {
  const file = tmpConfig(t, TEXT);
  const env = { [CONFIG_HANDOFF_ENV]: handoffWith(file, (raw) => (raw.git_owner = 'handed-down')) };
  // Same length, other content: only the identity (mtime, ctime in ns) tells.
  fs.writeFileSync(file, TEXT.replace('acme', 'beta'));
  t.equal(loadConfig({ path: file, env }).config.git_owner, 'beta');
  // Replaced by another file under the same name (a new inode), as editors save.
  const fresh = `${file}.new`;
  fs.writeFileSync(fresh, TEXT.replace('acme', 'gama'));
  fs.renameSync(fresh, file);
  t.equal(loadConfig({ path: file, env }).config.git_owner, 'gama');
});

t.test('a handoff for another file, garbled, or of an unknown version is ignored', async (t) => {
  const file = tmpConfig(t, TEXT);
  const other = tmpConfig(t, TEXT.replace('acme', 'other'));
  const forOther = handoffWith(other, (raw) => (raw.git_owner = 'handed-down'));
  t.equal(loadConfig({ path: file, env: { [CONFIG_HANDOFF_ENV]: forOther } }).config.git_owner, 'acme', 'another file');
  t.equal(loadConfig({ path: file, env: { [CONFIG_HANDOFF_ENV]: '{"v":1,"file":' } }).config.git_owner, 'acme', 'garbled');
  t.equal(loadConfig({ path: file, env: { [CONFIG_HANDOFF_ENV]: 'null' } }).config.git_owner, 'acme', 'null');
  const v2 = JSON.stringify({ ...JSON.parse(handoffWith(file, (raw) => (raw.git_owner = 'handed-down'))), v: 2 });
  t.equal(loadConfig({ path: file, env: { [CONFIG_HANDOFF_ENV]: v2 } }).config.git_owner, 'acme', 'unknown version');
});

t.test('what is handed down is still validated: a bad value fails as if it had been in the file', async (t) => {
  const file = tmpConfig(t, TEXT);
  const env = { [CONFIG_HANDOFF_ENV]: handoffWith(file, (raw) => ((raw.watcher as Record<string, unknown>).max_parallel = 0)) };
  t.throws(() => loadConfig({ path: file, env }), ConfigError);
  t.throws(() => loadConfig({ path: file, env }), /max_parallel/);
});

t.test('YAML that JSON cannot carry unchanged (.inf, say) is not handed down: each tool parses it', async (t) => {
  const loaded = loadConfig({ path: tmpConfig(t, TEXT), env: {} });
  t.ok(configHandoff(loaded), 'plain values: handed down');
  t.equal(configHandoff({ ...loaded, source: { identity: loaded.source!.identity, raw: { git_owner: 'acme', x: Infinity } } }), undefined, 'Infinity would arrive as null');
});

t.test('no file (defaults): nothing to hand down', async (t) => {
  const loaded = loadConfig({ env: { PV_CONFIG: '' }, allowMissing: true });
  // (an installed config at the default path would be read instead: then its handoff is checked below)
  if (loaded.path === undefined) t.equal(configHandoff(loaded), undefined);
  else t.ok(configHandoff(loaded));
});

t.test("a child's environment gets this process's handoff, never one inherited for another file", async (t) => {
  const file = tmpConfig(t, TEXT);
  const loaded = loadConfig({ path: file, env: {} });
  const inherited = { PATH: '/bin', [CONFIG_HANDOFF_ENV]: '{"v":1,"file":"/elsewhere.yaml"}' };
  const env = envWithConfigHandoff(inherited, loaded);
  t.equal(env.PATH, '/bin');
  t.equal(JSON.parse(env[CONFIG_HANDOFF_ENV]!).file, file);
  t.notOk(CONFIG_HANDOFF_ENV in envWithConfigHandoff(inherited, undefined), 'none to give: the inherited one is dropped');
  t.equal(inherited[CONFIG_HANDOFF_ENV], '{"v":1,"file":"/elsewhere.yaml"}', 'the given environment is not changed');
});
