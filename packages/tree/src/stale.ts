import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parsePromptName } from '@prompt-valet/core';
import { NOTE_NAME, readNote, type NoteState } from './error-note.js';

/**
 * What a stale folder holds. Every non-folder entry anywhere below it is
 * the operator's (prompts in any state, notes, dotfiles of an unfinished
 * upload, symlinks), except pv-tree's own ERROR.md at its top.
 */
export interface StaleContents {
  /** relative paths of `*.running.md` files: a run is using this folder */
  running: string[];
  /** relative paths of the operator's files, sorted */
  files: string[];
  /** every folder, the deepest first, ending with the folder itself */
  dirsBottomUp: string[];
  note: NoteState;
}

export async function inspectStale(dir: string): Promise<StaleContents> {
  const note = await readNote(dir);
  const out: StaleContents = { running: [], files: [], dirsBottomUp: [], note };
  const walk = async (abs: string, rel: string): Promise<void> => {
    const entries = await fsp.readdir(abs, { withFileTypes: true });
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        await walk(path.join(abs, e.name), childRel);
        continue;
      }
      if (rel === '' && e.name === NOTE_NAME && note.kind === 'ours') continue;
      if (parsePromptName(e.name)?.state === 'running') out.running.push(childRel);
      out.files.push(childRel);
    }
    out.dirsBottomUp.push(abs);
  };
  await walk(dir, '');
  out.files.sort();
  out.running.sort();
  return out;
}
