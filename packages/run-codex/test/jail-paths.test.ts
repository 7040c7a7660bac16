import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '@prompt-valet/core';
import { coveredFiles, hiddenPaths } from '../src/jail.js';

t.test('the valet\'s folders are hidden, nested ones once, system folders never', async (t) => {
  const root = fs.mkdtempSync('/var/cache/pv-jail-paths-');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const d of ['config', 'inbox', 'processed', 'finished', 'repos', 'home/gh']) fs.mkdirSync(path.join(root, d), { recursive: true });
  const configPath = path.join(root, 'config/prompt-valet.yaml');
  fs.writeFileSync(configPath, JSON.stringify({ inbox: `${root}/inbox`, processed: `${root}/processed`, finished: `${root}/finished`, repos_root: `${root}/repos` }));
  const { config } = loadConfig({ path: configPath });
  const hidden = hiddenPaths({ config, configPath, env: { HOME: path.join(root, 'home'), GH_CONFIG_DIR: path.join(root, 'home/gh'), CODEX_HOME: '/etc' } });
  for (const d of ['config', 'inbox', 'processed', 'finished', 'repos', 'home']) t.ok(hidden.includes(path.join(root, d)), `${d} is hidden`);
  t.notOk(hidden.includes(path.join(root, 'home/gh')), 'a folder inside a hidden one is not covered twice');
  t.ok(hidden.includes('/run') && hidden.includes('/tmp'), '/run and /tmp are covered');
  t.notOk(hidden.includes('/etc'), 'a system folder is never covered, whatever the environment says');
  t.same(coveredFiles({ config, configPath, env: {} }), [], 'the config file is hidden with its folder');
});

t.test('a config file in /etc is covered alone, /etc stays', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-jail-paths-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'c.yaml'), '{}');
  const { config } = loadConfig({ path: path.join(dir, 'c.yaml') });
  const configPath = '/etc/hostname'; // any file directly in /etc stands in for /etc/prompt-valet.yaml
  t.notOk(hiddenPaths({ config, configPath, env: {} }).includes('/etc'));
  t.same(coveredFiles({ config, configPath, env: {} }), ['/etc/hostname']);
});
