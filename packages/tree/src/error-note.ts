import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isErrno } from '@prompt-valet/core';

/**
 * pv-tree's ERROR.md: the one file it writes into the inbox besides folders.
 * Its first line is a marker, so pv-tree can tell its own note from an
 * ERROR.md an operator wrote (that one is operator content like any other).
 * The text holds no timestamp: the same situation renders the same bytes, so
 * a pass that finds nothing new rewrites nothing.
 */
export const NOTE_NAME = 'ERROR.md';
export const NOTE_MARKER = '<!-- pv-tree: this note is written and removed by pv-tree; edits are lost -->';

export type NoteState = { kind: 'none' } | { kind: 'ours'; content: string } | { kind: 'foreign' };

export async function readNote(dir: string): Promise<NoteState> {
  let content: string;
  try {
    content = await fsp.readFile(path.join(dir, NOTE_NAME), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return { kind: 'none' };
    if (isErrno(err, 'EISDIR')) return { kind: 'foreign' };
    throw err;
  }
  return content.startsWith(NOTE_MARKER + '\n') ? { kind: 'ours', content } : { kind: 'foreign' };
}

export interface NoteText {
  title: string;
  paragraphs: string[];
  /** a bulleted list after the paragraphs */
  items?: string[];
  /** a paragraph after the list */
  after?: string;
}

const MAX_ITEMS = 200;

export function renderNote(note: NoteText): string {
  const lines = [NOTE_MARKER, `# ${note.title}`, ''];
  for (const p of note.paragraphs) lines.push(p, '');
  if (note.items && note.items.length > 0) {
    for (const item of note.items.slice(0, MAX_ITEMS)) lines.push(`- ${item}`);
    if (note.items.length > MAX_ITEMS) lines.push(`- … and ${note.items.length - MAX_ITEMS} more`);
    lines.push('');
  }
  if (note.after) lines.push(note.after, '');
  return lines.join('\n');
}

/** `name` as inline Markdown code, whatever it holds. */
export function code(name: string): string {
  const ticks = name.includes('`') ? '``' : '`';
  return `${ticks}${name}${ticks}`;
}
