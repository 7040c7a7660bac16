import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ValetConfig } from '@prompt-valet/core';
import type { Layout } from './layout.js';

/**
 * Copyparty, the optional file server: the operator uploads prompts into the
 * inbox and reads run folders from processed/. It comes from pip on the
 * target (it is not an npm or Debian package), so the installer only finds it.
 */
export const COPYPARTY_ACCOUNT = 'valet';
/** Where `pipx` puts it with the install command below. */
export const COPYPARTY_DEFAULT_PATH = '/usr/local/bin/copyparty';
export const COPYPARTY_INSTALL_HELP =
  `install it with: apt-get install -y pipx && PIPX_HOME=/opt/pipx PIPX_BIN_DIR=/usr/local/bin pipx install copyparty` +
  ` (or: curl -fLo /usr/local/bin/copyparty https://github.com/9001/copyparty/releases/latest/download/copyparty-sfx.py` +
  ` && chmod 755 /usr/local/bin/copyparty), then run pv-install again`;

export function copypartyConfigPath(layout: Layout): string {
  return path.posix.join(layout.prefix, 'config', 'copyparty.conf');
}

/** The system path of the copyparty program, or undefined when it is not installed. */
export function findCopyparty(layout: Layout, cmd: string, envPath: string | undefined): string | undefined {
  const isExecutable = (systemPath: string) => {
    try {
      fs.accessSync(layout.disk(systemPath), fs.constants.X_OK);
      return fs.statSync(layout.disk(systemPath)).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  const dirs = [...(envPath ?? '').split(':').filter((d) => d.startsWith('/')), '/usr/local/bin', '/usr/bin'];
  for (const d of dirs) {
    const p = path.posix.join(d, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** Where copyparty keeps its index: the unit's CacheDirectory, never beside the served files. */
export const COPYPARTY_HIST_DIR = '/var/cache/prompt-valet-copyparty';

/** copyparty.conf: the inbox writable, processed/ and finished/ read-only, one account. */
export function renderCopypartyConfig(config: ValetConfig, password = randomBytes(18).toString('base64url')): string {
  return `# Written by pv-install for copyparty.service; yours to edit, never overwritten.
# The account below is the only one; change its password here and restart.
[global]
  i: ${config.file_server.host}
  p: ${config.file_server.port}
  no-robots
  hist: ${COPYPARTY_HIST_DIR}

[accounts]
  ${COPYPARTY_ACCOUNT}: ${password}

[/inbox]
  ${config.inbox}
  accs:
    rw: ${COPYPARTY_ACCOUNT}

[/processed]
  ${config.processed}
  accs:
    r: ${COPYPARTY_ACCOUNT}

[/finished]
  ${config.finished}
  accs:
    r: ${COPYPARTY_ACCOUNT}
`;
}
