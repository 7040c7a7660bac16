import * as fs from 'node:fs';
import * as path from 'node:path';
import { branchToFolder, checkBranchName, folderToBranch, type ValetConfig } from '@prompt-valet/core';
import type { BranchVerdict } from './branch-policy.js';
import type { Clone, Discovery } from './discover.js';
import { readDirents } from './discover.js';
import { code, NOTE_NAME, readNote, renderNote, type NoteState } from './error-note.js';
import { inspectStale } from './stale.js';

/**
 * Planning compares what should be in the inbox with what is there and
 * says what to do, touching nothing; `apply.ts` does it. `--dry-run` is a
 * plan without the apply.
 */
export type ActionName = 'created' | 'removed' | 'marked' | 'unmarked' | 'skipped' | 'failed';

/** One line of pv-tree's output. */
export interface ActionRecord {
  v: 1;
  action: ActionName;
  /** the folder acted on (absolute) */
  path: string;
  /** `owner/repo` */
  repo?: string;
  branch?: string;
  reason?: string;
  /** the ERROR.md written or removed */
  note?: string;
  retryable?: boolean;
  dry_run?: true;
}

export type Op =
  | { kind: 'none' }
  | { kind: 'mkdir'; dir: string }
  /** unlink pv-tree's note (if any), then rmdir each folder, deepest first; never a recursive delete */
  | { kind: 'remove'; note?: string; dirs: string[] }
  | { kind: 'write-note'; file: string; content: string }
  | { kind: 'unlink-note'; file: string };

export interface Planned {
  record: ActionRecord;
  op: Op;
}

export function repoRootOf(config: ValetConfig, owner: string, repo: string): string {
  return config.inbox_mode === 'multi_owner' ? path.join(config.inbox, owner, repo) : path.join(config.inbox, repo);
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Names longer than this cannot be a folder on Linux filesystems. */
const MAX_FOLDER_BYTES = 255;

interface Subject {
  repo?: string;
  branch?: string;
}

function rec(action: ActionName, p: string, subject: Subject, extra: Partial<ActionRecord> = {}): ActionRecord {
  return { v: 1, action, path: p, ...subject, ...extra };
}

/**
 * A note pv-tree wants at `dir` (or none): write it when missing or
 * different, remove pv-tree's own when no longer wanted, and never touch an
 * ERROR.md that an operator wrote.
 */
function reconcileNote(dir: string, existing: NoteState, wanted: string | undefined, subject: Subject, reason: string): Planned[] {
  const file = path.join(dir, NOTE_NAME);
  if (existing.kind === 'foreign') {
    if (wanted === undefined) return [];
    return [{ record: rec('skipped', dir, subject, { reason: `${reason}; but ${NOTE_NAME} here was not written by pv-tree, so it is not replaced` }), op: { kind: 'none' } }];
  }
  if (wanted === undefined) {
    if (existing.kind === 'ours') return [{ record: rec('unmarked', dir, subject, { note: file, reason: 'the problem it reported is gone' }), op: { kind: 'unlink-note', file } }];
    return [];
  }
  if (existing.kind === 'ours' && existing.content === wanted) return [];
  return [{ record: rec('marked', dir, subject, { note: file, reason }), op: { kind: 'write-note', file, content: wanted } }];
}

/**
 * A folder that mirrors nothing any more. Empty (apart from pv-tree's own
 * note): removed. Holding anything else: left in place with an ERROR.md that
 * lists what is there. Holding a running prompt: left alone entirely.
 */
export async function planStale(dir: string, subject: Subject, reason: string, explain: string): Promise<Planned[]> {
  let contents;
  try {
    contents = await inspectStale(dir);
  } catch (err) {
    return [{ record: rec('failed', dir, subject, { reason: `cannot read stale folder: ${(err as Error).message}` }), op: { kind: 'none' } }];
  }
  if (contents.running.length > 0) {
    return [{
      record: rec('skipped', dir, subject, { reason: `${reason}; a prompt is running here (${contents.running[0]}), so the folder is left alone until it settles` }),
      op: { kind: 'none' },
    }];
  }
  if (contents.files.length === 0) {
    const note = contents.note.kind === 'ours' ? path.join(dir, NOTE_NAME) : undefined;
    return [{ record: rec('removed', dir, subject, { reason: `${reason}; the folder was empty` }), op: { kind: 'remove', dirs: contents.dirsBottomUp, ...(note ? { note } : {}) } }];
  }
  const wanted = renderNote({
    title: 'pv-tree: this folder is not mirrored any more',
    paragraphs: [
      explain,
      'pv-tree never deletes or moves a file it did not write, so everything here was left where it is. ' +
        'A prompt in this folder targets something that is not there: move it into a folder that pv-tree mirrors, or delete it.',
      `Files here (relative to ${code(dir)}):`,
    ],
    items: contents.files.map(code),
    after: 'Once nothing but this note is left, pv-tree removes the folder. If the folder becomes valid again, pv-tree removes this note.',
  });
  return reconcileNote(dir, contents.note, wanted, subject, `${reason}; files left in place`);
}

export interface LivePlan {
  planned: Planned[];
  /** branch folders this repository should have */
  folders: number;
}

/** The inbox part of one repository whose branches were listed. */
export async function planLiveRepo(
  config: ValetConfig,
  policy: (branch: string) => BranchVerdict,
  clone: Clone,
  branches: string[],
): Promise<LivePlan> {
  const root = repoRootOf(config, clone.owner, clone.repo);
  const subject = { repo: clone.key };
  const desired = new Map<string, string>();
  const unmirrored = new Map<string, string>();
  const invalid: string[] = [];
  for (const b of branches) {
    const verdict = policy(b);
    if (!verdict.mirror) {
      unmirrored.set(b, verdict.reason);
      continue;
    }
    const check = checkBranchName(b);
    const folder = branchToFolder(b);
    if (!check.ok) {
      invalid.push(`${code(b)}: ${check.reason}`);
      unmirrored.set(b, check.reason);
    } else if (Buffer.byteLength(folder) > MAX_FOLDER_BYTES) {
      invalid.push(`${code(b)}: its folder name would be longer than ${MAX_FOLDER_BYTES} bytes`);
      unmirrored.set(b, 'its folder name would be too long');
    } else {
      desired.set(folder, b);
    }
  }
  invalid.sort(byName);
  const rootNote =
    invalid.length === 0
      ? undefined
      : renderNote({
          title: `pv-tree: branches of ${clone.key} without a folder`,
          paragraphs: [`These branches exist on origin, but their names cannot be used here, so they have no inbox folder:`],
          items: invalid,
          after: 'Rename them upstream if prompts should target them. This note goes away by itself once no such branch is left.',
        });
  const folders = [...desired.keys()].sort(byName);
  const planned: Planned[] = [];
  const entries = await readDirents(root);

  if (!entries) {
    if (folders.length > 0 || config.tree_builder.eager_repos || rootNote) {
      planned.push({ record: rec('created', root, subject, { reason: folders.length > 0 ? 'repository has mirrored branches' : config.tree_builder.eager_repos ? 'tree_builder.eager_repos' : 'to hold ERROR.md' }), op: { kind: 'mkdir', dir: root } });
    }
    for (const f of folders) {
      const dir = path.join(root, f);
      planned.push({ record: rec('created', dir, { ...subject, branch: desired.get(f)! }), op: { kind: 'mkdir', dir } });
    }
    if (rootNote) planned.push(...reconcileNote(root, { kind: 'none' }, rootNote, subject, 'branches with invalid names'));
    return { planned, folders: folders.length };
  }

  const present = new Map(entries.map((e) => [e.name, e]));
  for (const f of folders) {
    const dir = path.join(root, f);
    const branch = desired.get(f)!;
    const e = present.get(f);
    if (!e) {
      planned.push({ record: rec('created', dir, { ...subject, branch }), op: { kind: 'mkdir', dir } });
    } else if (e.isDirectory() && fs.existsSync(path.join(dir, NOTE_NAME))) {
      // Cheap existence test first: this runs for every mirrored folder on every pass.
      planned.push(...reconcileNote(dir, await readNote(dir), undefined, { ...subject, branch }, ''));
    }
  }
  const staleNames = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !desired.has(e.name))
    .map((e) => e.name)
    .sort(byName);
  for (const name of staleNames) {
    const branch = folderToBranch(name);
    const why = unmirrored.get(branch);
    const reason = why ? `branch is not mirrored: ${why}` : 'branch does not exist on origin';
    const explain = why
      ? `Branch ${code(branch)} of ${code(clone.key)} exists on origin but is not mirrored: ${why}.`
      : `${code(clone.key)} has no branch ${code(branch)} on origin (deleted upstream, or never there).`;
    planned.push(...(await planStale(path.join(root, name), { ...subject, branch }, reason, explain)));
  }
  const rootNoteState: NoteState = present.has(NOTE_NAME) ? await readNote(root) : { kind: 'none' };
  planned.push(...reconcileNote(root, rootNoteState, rootNote, subject, 'branches with invalid names'));
  return { planned, folders: folders.length };
}

/**
 * The inbox's top levels: repository roots (and, in multi_owner mode, owner
 * folders) that no clone backs any more, and the top-level note that lists
 * folders under repos_root that cannot be mirrored. `untouchable` holds the
 * inbox paths of repositories whose state is unknown this pass (listing
 * failed, not a git repository, invalid name): they are left as they are.
 */
export async function planInboxRoots(
  config: ValetConfig,
  discovery: Discovery,
  live: Set<string>,
  untouchable: Set<string>,
  /** owners whose upstream repositories could not be listed (greedy_inboxes): none of their unbacked folders is stale */
  unknownOwners: ReadonlySet<string> = new Set(),
): Promise<Planned[]> {
  const inbox = config.inbox;
  const planned: Planned[] = [];
  const top = (await readDirents(inbox)) ?? [];
  const dirs = top.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byName);
  const notCloned = (owner: string, repo: string) =>
    config.tree_builder.greedy_inboxes
      ? {
          reason: 'repository is neither cloned under repos_root nor listed upstream',
          explain: `${code(`${owner}/${repo}`)} is not cloned under ${code(config.repos_root)} and not among ${code(owner)}'s repositories upstream (deleted, renamed or archived), so nothing here is mirrored.`,
        }
      : {
          reason: 'repository is not cloned under repos_root',
          explain: `${code(`${owner}/${repo}`)} is not cloned under ${code(config.repos_root)} (removed, or never cloned), so nothing here is mirrored.`,
        };

  if (config.inbox_mode === 'legacy_single_owner') {
    const owner = config.git_owner;
    for (const name of unknownOwners.has(owner) ? [] : dirs) {
      const dir = path.join(inbox, name);
      if (untouchable.has(dir) || live.has(`${owner}/${name}`)) continue;
      const { reason, explain } = notCloned(owner, name);
      planned.push(...(await planStale(dir, { repo: `${owner}/${name}` }, reason, explain)));
    }
  } else {
    for (const owner of dirs) {
      const ownerDir = path.join(inbox, owner);
      if (untouchable.has(ownerDir) || unknownOwners.has(owner)) continue;
      if (!discovery.owners.has(owner)) {
        planned.push(...(await planStale(ownerDir, {}, 'no repository of this owner is cloned under repos_root',
          `No repository of owner ${code(owner)} is cloned under ${code(config.repos_root)}, so nothing here is mirrored.`)));
        continue;
      }
      const repos = ((await readDirents(ownerDir)) ?? []).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byName);
      for (const name of repos) {
        const dir = path.join(ownerDir, name);
        if (untouchable.has(dir) || live.has(`${owner}/${name}`)) continue;
        const { reason, explain } = notCloned(owner, name);
        planned.push(...(await planStale(dir, { repo: `${owner}/${name}` }, reason, explain)));
      }
    }
  }

  const problems = [
    ...discovery.invalid.map((i) => `${code(i.rel)}: ${i.reason}`),
    ...discovery.notGit.map((c) => `${code(c.key)}: not a git repository (no .git)`),
  ];
  const topNote =
    problems.length === 0
      ? undefined
      : renderNote({
          title: 'pv-tree: folders under repos_root that are not mirrored',
          paragraphs: [`pv-tree found these folders in ${code(config.repos_root)}, but cannot mirror them, so they get no inbox folder and their inbox folders (if any) are left as they are:`],
          items: problems,
          after: 'Rename, repair or remove them. This note goes away by itself once none is left.',
        });
  const topState: NoteState = top.some((e) => e.name === NOTE_NAME) ? await readNote(inbox) : { kind: 'none' };
  planned.push(...reconcileNote(inbox, topState, topNote, {}, 'folders under repos_root cannot be mirrored'));
  return planned;
}
