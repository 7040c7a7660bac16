import * as fsp from 'node:fs/promises';
import { isErrno, writeFileAtomic } from '@prompt-valet/core';
import type { ActionRecord, Planned } from './plan.js';

async function unlinkIfExists(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/**
 * Carry out one planned action and say what actually happened. rmdir(2) is
 * the only way anything is removed, so a folder that gained a file since it
 * was inspected stays (and is looked at again on the next pass).
 */
export async function applyPlanned(p: Planned): Promise<ActionRecord> {
  const { op, record } = p;
  try {
    switch (op.kind) {
      case 'none':
        break;
      case 'mkdir':
        await fsp.mkdir(op.dir, { recursive: true });
        break;
      case 'remove':
        if (op.note) await unlinkIfExists(op.note);
        for (const dir of op.dirs) {
          try {
            await fsp.rmdir(dir);
          } catch (err) {
            if (isErrno(err, 'ENOENT')) continue;
            if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST')) {
              return { ...record, action: 'skipped', reason: `${record.reason}; but something was added while pv-tree ran, so it is left for the next pass` };
            }
            throw err;
          }
        }
        break;
      case 'write-note':
        await writeFileAtomic(op.file, op.content, { mode: 0o644 });
        break;
      case 'unlink-note':
        await unlinkIfExists(op.file);
        break;
    }
    return record;
  } catch (err) {
    return { ...record, action: 'failed', reason: `could not do "${record.action}": ${(err as Error).message}` };
  }
}
