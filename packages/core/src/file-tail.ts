import * as fsp from 'node:fs/promises';
import { isErrno } from './files.js';

/**
 * Following a file that another process appends to (a run's agent.log):
 * pv-web streams it to a browser, pv-queue's worker publishes it line by
 * line. Both poll; this is the one reader. Bytes, not strings, are carried
 * between reads, so a UTF-8 character cut by a read boundary is never
 * broken; a file shorter than the offset (truncated or replaced) is read
 * again from its start.
 */
export interface FileTail {
  /** bytes of the file read so far */
  offset: number;
  /** read bytes after the last newline, not yet returned */
  partial: Buffer;
}

export function newFileTail(offset = 0): FileTail {
  return { offset, partial: Buffer.alloc(0) };
}

/**
 * The complete lines appended since the last call (without the last
 * newline), reading at most about `maxBytes` (more only while no newline
 * has come); `end` is the byte offset just after them. Undefined when no
 * complete line is there, or the file does not exist (yet).
 */
export async function readAppendedLines(file: string, tail: FileTail, maxBytes = 256 * 1024): Promise<{ text: string; end: number } | undefined> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  try {
    for (;;) {
      const { size } = await fh.stat();
      if (size < tail.offset) {
        tail.offset = 0;
        tail.partial = Buffer.alloc(0);
      }
      if (size === tail.offset) return undefined;
      const buf = Buffer.alloc(Math.min(maxBytes, size - tail.offset));
      const { bytesRead } = await fh.read(buf, 0, buf.length, tail.offset);
      if (bytesRead === 0) return undefined;
      tail.offset += bytesRead;
      const data = Buffer.concat([tail.partial, buf.subarray(0, bytesRead)]);
      const nl = data.lastIndexOf(0x0a);
      if (nl < 0) {
        tail.partial = data;
        continue;
      }
      tail.partial = data.subarray(nl + 1);
      return { text: data.subarray(0, nl).toString('utf8'), end: tail.offset - tail.partial.length };
    }
  } finally {
    await fh.close();
  }
}
