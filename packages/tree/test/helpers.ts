import * as fsp from 'node:fs/promises';
import type { Test } from 'tap';
import * as path from 'node:path';
import { cloneInto, makeOrigin, makeValetRoot, runBin, type BinResult, type ConfigOverrides, type ValetRoot } from '@prompt-valet/testkit';

/** What a person sees in the inbox: every folder (with a trailing /) and file, relative, sorted. */
export async function inboxListing(inbox: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        await walk(path.join(dir, e.name), r);
      } else out.push(r);
    }
  };
  await walk(inbox, '');
  return out.sort();
}

/** Files and their content below the inbox, to show that a pass changed nothing at all. */
export async function inboxSnapshot(inbox: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await inboxListing(inbox)) {
    out[rel] = rel.endsWith('/') ? '' : await fsp.readFile(path.join(inbox, rel), 'utf8');
  }
  return out;
}

export interface TreeFixture {
  v: ValetRoot;
  origins: string;
  /** make a bare origin with `branches` and clone it to repos_root/<owner>/<repo>; returns the bare path */
  addRepo(owner: string, repo: string, branches: string[]): Promise<string>;
  /** pv-tree --once --config … plus `args` */
  tree(...args: string[]): Promise<BinResult & { actions: Record<string, unknown>[]; summary: Record<string, unknown> }>;
}

export async function treeFixture(t: Test, overrides: ConfigOverrides = {}): Promise<TreeFixture> {
  const v = await makeValetRoot(overrides, 'pv-tree-test-');
  t.teardown(() => v.cleanup());
  const origins = path.join(v.root, 'origins');
  return {
    v,
    origins,
    async addRepo(owner, repo, branches) {
      const bare = await makeOrigin(path.join(origins, owner, `${repo}.git`), { branches });
      await cloneInto(`file://${bare}`, path.join(v.repos, owner, repo));
      return bare;
    },
    async tree(...args) {
      const r = await runBin('pv-tree', ['--once', '--config', v.configPath, ...args], { timeout: 60_000 });
      const actions = r.records.filter((x) => 'action' in x) as Record<string, unknown>[];
      const last = r.records[r.records.length - 1] as { summary?: Record<string, unknown> } | undefined;
      return { ...r, actions, summary: last?.summary ?? {} };
    },
  };
}

/** `[action, path relative to the inbox]` of each action line, for compact assertions. */
export function actionsOf(actions: Record<string, unknown>[], inbox: string): [string, string][] {
  return actions.map((a) => [String(a.action), path.relative(inbox, String(a.path))]);
}
