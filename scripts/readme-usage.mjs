#!/usr/bin/env node
// Keeps each tool README's usage block equal to the tool's own `--help`.
// A README marks the block with
//   <!-- usage: pv-x --help -->
//   ```
//   …generated…
//   ```
//   <!-- /usage -->
// `node scripts/readme-usage.mjs` rewrites every block from the built bins;
// `--check` changes nothing and exits 1 naming each README that differs
// (test/readme-usage.test.ts runs it, so a stale README fails the tests).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const BLOCK = /<!-- usage: (pv-[a-z-]+) --help -->\n```\n[\s\S]*?\n```\n<!-- \/usage -->/g;

function helpText(tool) {
  const pkgs = fs.readdirSync(path.join(root, 'packages'));
  for (const pkg of pkgs) {
    const bin = path.join(root, 'packages', pkg, 'bin', `${tool}.js`);
    if (fs.existsSync(bin)) {
      // A fixed width and no colour, so the text is the same on every machine.
      return execFileSync(process.execPath, [bin, '--help'], {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', COLUMNS: '100' },
      }).trimEnd();
    }
  }
  throw new Error(`no bin for ${tool} under packages/*/bin`);
}

let stale = 0;
let blocks = 0;
for (const pkg of fs.readdirSync(path.join(root, 'packages')).sort()) {
  const readme = path.join(root, 'packages', pkg, 'README.md');
  if (!fs.existsSync(readme)) continue;
  const text = fs.readFileSync(readme, 'utf8');
  const next = text.replace(BLOCK, (_m, tool) => {
    blocks++;
    return `<!-- usage: ${tool} --help -->\n\`\`\`\n${helpText(tool)}\n\`\`\`\n<!-- /usage -->`;
  });
  if (next === text) continue;
  stale++;
  if (check) console.error(`${path.relative(root, readme)}: the usage block differs from the tool's --help (run: node scripts/readme-usage.mjs)`);
  else fs.writeFileSync(readme, next);
}
if (!check) console.error(`readme-usage: ${blocks} usage block(s), ${stale} README(s) rewritten`);
process.exitCode = check && stale > 0 ? 1 : 0;
