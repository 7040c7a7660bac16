import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git } from '@prompt-valet/core';

/**
 * Real git repositories for tests: bare "origins" with chosen branches and
 * commits, and clones of them where pv-* tools expect them.
 */
const IDENTITY = ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', '-c', 'init.defaultBranch=main'];

export interface OriginSpec {
  /** branches to create; the first is the default (HEAD). Default ['main'] */
  branches?: string[];
  /** files of the first commit */
  files?: Record<string, string>;
}

/**
 * Make a bare repository at `bareDir` (e.g. `<root>/origins/acme/widget.git`)
 * whose branches all point at one commit holding `files`.
 */
export async function makeOrigin(bareDir: string, spec: OriginSpec = {}): Promise<string> {
  const branches = spec.branches ?? ['main'];
  const files = spec.files ?? { 'README.md': '# test repository\n' };
  await fsp.mkdir(bareDir, { recursive: true });
  await git(['init', '--bare', '--quiet', '--initial-branch', branches[0] ?? 'main', bareDir]);
  const work = `${bareDir}.seed`;
  await fsp.rm(work, { recursive: true, force: true });
  await git([...IDENTITY, 'init', '--quiet', '--initial-branch', branches[0] ?? 'main', work]);
  for (const [name, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(work, name)), { recursive: true });
    await fsp.writeFile(path.join(work, name), content);
  }
  await git(['add', '-A'], { cwd: work });
  await git([...IDENTITY, 'commit', '--quiet', '-m', 'initial commit'], { cwd: work });
  await git(['remote', 'add', 'origin', bareDir], { cwd: work });
  const refspecs = branches.map((b) => `HEAD:refs/heads/${b}`);
  if (refspecs.length > 0) await git(['push', '--quiet', 'origin', ...refspecs], { cwd: work });
  await fsp.rm(work, { recursive: true, force: true });
  return bareDir;
}

/** Add a commit with `files` on `branch` of the bare repository (creating the branch from `from`). */
export async function commitToOrigin(bareDir: string, branch: string, files: Record<string, string>, from = branch): Promise<string> {
  const work = `${bareDir}.work-${process.pid}-${Date.now()}`;
  await git(['clone', '--quiet', '--branch', from, bareDir, work]);
  try {
    if (from !== branch) await git(['checkout', '--quiet', '-b', branch], { cwd: work });
    for (const [name, content] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(work, name)), { recursive: true });
      await fsp.writeFile(path.join(work, name), content);
    }
    await git(['add', '-A'], { cwd: work });
    await git([...IDENTITY, 'commit', '--quiet', '-m', `change on ${branch}`], { cwd: work });
    await git(['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], { cwd: work });
    return (await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

/** Delete a branch in the bare repository (as if deleted upstream). */
export async function deleteOriginBranch(bareDir: string, branch: string): Promise<void> {
  await git(['update-ref', '-d', `refs/heads/${branch}`], { cwd: bareDir });
}

/** Clone `url` into `dest` (e.g. `<repos_root>/<owner>/<repo>`). */
export async function cloneInto(url: string, dest: string): Promise<string> {
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  await git(['clone', '--quiet', url, dest]);
  return dest;
}

/** The branches of a bare repository: name → commit. */
export async function originBranches(bareDir: string): Promise<Map<string, string>> {
  const { stdout } = await git(['for-each-ref', '--format=%(refname:short) %(objectname)', 'refs/heads/'], { cwd: bareDir });
  const out = new Map<string, string>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [name, sha] = line.split(' ');
    out.set(name!, sha!);
  }
  return out;
}

/** Files changed by the commit at the tip of `branch` in the bare repository. */
export async function filesAtTip(bareDir: string, branch: string): Promise<string[]> {
  const { stdout } = await git(['show', '--name-only', '--format=', `refs/heads/${branch}`], { cwd: bareDir });
  return stdout.split('\n').filter(Boolean);
}
