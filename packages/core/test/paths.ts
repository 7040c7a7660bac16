import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT_FOR_TESTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** `text` as prompt-valet.yaml in a temporary folder of the test's own (removed at teardown): its path. */
export function tmpConfig(t: { teardown(fn: () => void): void }, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'prompt-valet.yaml');
  fs.writeFileSync(file, text);
  return file;
}
