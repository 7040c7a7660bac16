import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { PvError } from './errors.js';

/**
 * Read a prompt file, never through a symlink and never more than
 * `maxBytes` (limits.max_prompt_bytes): a larger prompt is refused before
 * its text is read, so a 2 GB file costs a stat, not 2 GB of memory. At most
 * maxBytes + 1 bytes are read even if the file grows after the stat.
 */
export class PromptTooLargeError extends PvError {
  constructor(file: string, size: number, maxBytes: number) {
    super('prompt_too_large', `${file}: the prompt is ${size} bytes, more than limits.max_prompt_bytes (${maxBytes}); not read`);
  }
}

export async function readPromptText(file: string, maxBytes: number): Promise<string> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw new PromptTooLargeError(file, size, maxBytes);
    const buf = Buffer.allocUnsafe(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new PromptTooLargeError(file, length, maxBytes);
    }
    return buf.subarray(0, length).toString('utf8');
  } finally {
    await fh.close();
  }
}
