import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT_FOR_TESTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
