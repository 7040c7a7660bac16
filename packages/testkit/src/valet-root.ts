import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';

/**
 * A temporary valet root laid out like /srv/prompt-valet, with a config file
 * that points at it. Every test makes its own and removes it with `cleanup`.
 */
export interface ValetRoot {
  root: string;
  inbox: string;
  processed: string;
  finished: string;
  repos: string;
  configPath: string;
  /** write the config again with these overrides merged (deeply) into the current one */
  configure(overrides: ConfigOverrides): Promise<void>;
  /** drop a prompt into the inbox the way an upload finishes: write a hidden temp, rename into place */
  dropPrompt(rel: string, text: string, opts?: { ageMs?: number }): Promise<string>;
  cleanup(): Promise<void>;
}

export type ConfigOverrides = Record<string, unknown>;

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      out[k] = v;
    }
  }
  return out;
}

export async function makeValetRoot(overrides: ConfigOverrides = {}, prefix = 'pv-test-'): Promise<ValetRoot> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  const dirs = {
    inbox: path.join(root, 'inbox'),
    processed: path.join(root, 'processed'),
    finished: path.join(root, 'finished'),
    repos: path.join(root, 'repos'),
  };
  for (const d of Object.values(dirs)) await fsp.mkdir(d, { recursive: true });
  await fsp.mkdir(path.join(root, 'config'), { recursive: true });
  const configPath = path.join(root, 'config', 'prompt-valet.yaml');
  let current: Record<string, unknown> = {
    inbox: dirs.inbox,
    processed: dirs.processed,
    finished: dirs.finished,
    repos_root: dirs.repos,
    git_owner: 'acme',
    inbox_mode: 'legacy_single_owner',
    watcher: { quiet_seconds: 0, git_protocol: 'file', git_default_host: path.join(root, 'origins') },
  };
  const write = async () => {
    await fsp.writeFile(configPath, YAML.stringify(current));
  };
  current = deepMerge(current, overrides);
  await write();

  return {
    root,
    ...dirs,
    configPath,
    async configure(more) {
      current = deepMerge(current, more);
      await write();
    },
    async dropPrompt(rel, text, opts = {}) {
      const dest = path.join(dirs.inbox, rel);
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.upload`);
      await fsp.writeFile(tmp, text);
      if (opts.ageMs) {
        const t = new Date(Date.now() - opts.ageMs);
        await fsp.utimes(tmp, t, t);
      }
      await fsp.rename(tmp, dest);
      return dest;
    },
    async cleanup() {
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
}
