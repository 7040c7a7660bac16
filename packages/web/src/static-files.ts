import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The page: plain files from `public/`, read once at start into memory.
 * Only the names listed here are served; a request path is a key into this
 * map, never a path on disk.
 */
export const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'public');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface StaticFile {
  body: Buffer;
  type: string;
}

export function loadStaticFiles(dir = PUBLIC_DIR): Map<string, StaticFile> {
  const out = new Map<string, StaticFile>();
  for (const name of fs.readdirSync(dir).sort()) {
    const type = TYPES[path.extname(name)];
    if (!type || name.startsWith('.')) continue;
    const body = fs.readFileSync(path.join(dir, name));
    out.set(`/${name}`, { body, type });
    if (name === 'index.html') out.set('/', { body, type });
  }
  return out;
}
