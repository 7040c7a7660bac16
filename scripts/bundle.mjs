#!/usr/bin/env node
// One esbuild bundle per tool: what `make install` deploys as the tools'
// executables (issue 17: start-up). Run by `make build` after `npx tsc -b`,
// from the built dist/ files:
//
//   packages/<pkg>/bundle/<tool>.js        the executable: `--help` alone prints
//                                          the text rendered here at build time
//                                          (no module is loaded); anything else
//                                          imports the bundle
//   packages/<pkg>/bundle/<tool>.main.mjs  bin/<tool>.js with everything it imports
//   packages/<pkg>/bundle/chunk-*.mjs      what the bundle imports only when used
//                                          (yargs for help and usage errors, chalk)
//   packages/<pkg>/bundle/inputs.json      the files the bundle was made from, so
//                                          pv-install can refuse a stale bundle
//   packages/<pkg>/bundle/package.json     the executable is CommonJS (see there)
//
// Why: a tool loading its modules from many files spends 130-220 ms of CPU
// before doing anything; one file halves that (README "Performance").
// The bundle sits where dist/ does (packages/<pkg>/<dir>/), so paths that a
// tool takes from its own location (pv-web's public/, pv-install's checkout)
// stay the same. Dependencies stay in the bundle's node_modules lookup path
// too, so anything left external still resolves.
//
// A bundle whose inputs are unchanged is kept (so `make build` on a built tree
// is quick and rewrites nothing another process may be reading); --force
// rebuilds. A new bundle is made beside the old one and renamed into place.
//
//   node scripts/bundle.mjs [--only pv-x,pv-y] [--force] [--quiet]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { BUNDLE_DIR, BUNDLE_INPUTS_FILE, bundleState } from '@prompt-valet/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every [package dir, tool name, bin file (relative to the package)] with a bin. */
export function toolBins(top = root) {
  const out = [];
  for (const d of fs.readdirSync(path.join(top, 'packages')).sort()) {
    const dir = path.join(top, 'packages', d);
    const manifest = path.join(dir, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    if (!pkg.bin) continue;
    const bins = typeof pkg.bin === 'string' ? { [pkg.name.split('/').pop()]: pkg.bin } : pkg.bin;
    for (const [tool, file] of Object.entries(bins)) out.push({ dir, tool, bin: file });
  }
  return out;
}

/** The `--help` text of the built bin, rendered as scripts/readme-usage.mjs renders it. */
function helpText(binPath) {
  return execFileSync(process.execPath, [binPath, '--help'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', COLUMNS: '100' },
  });
}

/** The executable: plain JavaScript, so that `--help` costs Node's start and one write. */
export function launcherSource(tool, help) {
  return [
    '#!/usr/bin/env node',
    `// Made by scripts/bundle.mjs from bin/${tool}.js (make build): do not edit.`,
    '// `--help` alone prints the text rendered at build time without loading any',
    '// module; everything else runs the bundle, where yargs still parses and helps.',
    "// CommonJS (bundle/package.json): Node starts it ~5 ms sooner than an ES module.",
    "'use strict';",
    'const args = process.argv.slice(2);',
    "if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {",
    `  process.stdout.write(${JSON.stringify(help)});`,
    '} else {',
    `  import('./${tool}.main.mjs');`,
    '}',
    '',
  ].join('\n');
}

// ESM output: CommonJS dependencies bundled into it call require() for Node's
// own modules, which an ES module does not have.
const REQUIRE_BANNER = "import { createRequire as __pvCreateRequire } from 'node:module';\nconst require = __pvCreateRequire(import.meta.url);";

export async function bundleTool({ dir, tool, bin }, top = root) {
  const final = path.join(dir, BUNDLE_DIR);
  const out = `${final}.new-${process.pid}`;
  fs.rmSync(out, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { [`${tool}.main`]: path.join(dir, bin) },
    outdir: out,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    chunkNames: 'chunk-[hash]',
    outExtension: { '.js': '.mjs' },
    banner: { js: REQUIRE_BANNER },
    metafile: true,
    logLevel: 'warning',
    absWorkingDir: top,
  });
  const help = helpText(path.join(dir, bin));
  const launcher = path.join(out, `${tool}.js`);
  fs.writeFileSync(launcher, launcherSource(tool, help), { mode: 0o755 });
  fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');
  // npm stamps the files it unpacks with a fixed old date, so a dependency
  // updated by npm ci looks older than any bundle: its install record (npm
  // rewrites it on every install) stands for all of node_modules.
  const installRecord = path.join('node_modules', '.package-lock.json');
  const extra = fs.existsSync(path.join(top, installRecord)) ? [installRecord] : [];
  const inputs = [...Object.keys(result.metafile.inputs), ...extra].sort();
  // Written last: its time stamp is the bundle's (see bundleState in core).
  fs.writeFileSync(path.join(out, BUNDLE_INPUTS_FILE), JSON.stringify({ tool, inputs }, null, 1) + '\n');
  const old = `${final}.old-${process.pid}`;
  if (fs.existsSync(final)) fs.renameSync(final, old);
  fs.renameSync(out, final);
  fs.rmSync(old, { recursive: true, force: true });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  return { tool, files: Object.keys(result.metafile.outputs).length + 2, bytes, inputs: inputs.length };
}

async function cli() {
  const args = process.argv.slice(2);
  const onlyAt = args.indexOf('--only');
  const only = onlyAt === -1 ? undefined : new Set((args[onlyAt + 1] ?? '').split(','));
  const quiet = args.includes('--quiet');
  const force = args.includes('--force');
  const tools = toolBins().filter((t) => !only || only.has(t.tool));
  if (only && tools.length !== only.size) {
    console.error(`bundle: no such tool among ${[...only].join(', ')}`);
    process.exitCode = 64;
    return;
  }
  for (const t of tools) {
    if (!fs.existsSync(path.join(t.dir, 'dist'))) {
      console.error(`bundle: ${path.relative(root, t.dir)} is not built (no dist/): run npx tsc -b first`);
      process.exitCode = 1;
      return;
    }
  }
  const stale = tools.filter((t) => force || !bundleState(root, t.dir, t.tool).fresh);
  if (!quiet) console.error(`bundle: ${tools.length - stale.length} of ${tools.length} bundle(s) up to date`);
  // Two at a time: this machine has 2 cores, and each build also runs the tool's --help.
  const queue = [...stale];
  const made = [];
  const worker = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) made.push(await bundleTool(t));
  };
  await Promise.all([worker(), worker()]);
  if (!quiet) {
    for (const m of made.sort((a, b) => a.tool.localeCompare(b.tool))) {
      console.error(`bundle: ${m.tool}: ${m.files} files, ${Math.round(m.bytes / 1024)} KiB from ${m.inputs} inputs`);
    }
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await cli();
