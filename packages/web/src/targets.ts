import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkBranchName, checkOwnerName, checkRepoName, expectErrno, folderToBranch, type ValetConfig } from '@prompt-valet/core';

/**
 * The folders a prompt can be submitted to: the branch folders pv-tree made
 * (`inbox/<repo>/<branch>`, or `inbox/<owner>/<repo>/<branch>` in
 * multi_owner mode). A target is found by listing the inbox, never by
 * joining a path from a request: a name that is not listed does not exist.
 */
export interface Target {
  /** the folder relative to the inbox: `widget/main`, `acme/widget/feature~x` */
  id: string;
  owner: string;
  repo: string;
  branch: string;
}

async function subfolders(dir: string): Promise<string[]> {
  try {
    // Dirent.isDirectory() is false for a symlink: a linked folder is never a target.
    return (await fsp.readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort();
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ENOTDIR');
    return [];
  }
}

export async function listTargets(config: ValetConfig): Promise<Target[]> {
  const out: Target[] = [];
  const multi = config.inbox_mode === 'multi_owner';
  const owners = multi ? await subfolders(config.inbox) : [config.git_owner];
  for (const owner of owners) {
    if (multi && !checkOwnerName(owner).ok) continue;
    const ownerDir = multi ? path.join(config.inbox, owner) : config.inbox;
    for (const repo of await subfolders(ownerDir)) {
      if (!checkRepoName(repo).ok) continue;
      for (const folder of await subfolders(path.join(ownerDir, repo))) {
        const branch = folderToBranch(folder);
        if (!checkBranchName(branch).ok) continue;
        out.push({ id: multi ? `${owner}/${repo}/${folder}` : `${repo}/${folder}`, owner, repo, branch });
      }
    }
  }
  return out;
}

export async function findTarget(config: ValetConfig, id: unknown): Promise<Target | undefined> {
  if (typeof id !== 'string' || id.length === 0 || id.length > 1024) return undefined;
  return (await listTargets(config)).find((t) => t.id === id);
}
