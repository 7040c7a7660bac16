#!/usr/bin/env node
// One esbuild bundle per tool: what `make install` deploys as the tools'
// executables (issue 17: start-up). Run by `make build` after `npx tsc -b`,
// from the built dist/ files:
//
//   packages/<pkg>/bundle/<tool>.js              the executable: `--help` alone prints
//                                                the text rendered here at build time
//                                                (no module is loaded); anything else
//                                                compiles and runs the bundle
//   packages/<pkg>/bundle/<tool>.main.cjs        bin/<tool>.js with everything it imports,
//                                                one CommonJS file (yargs and chalk are
//                                                in it but evaluated only when used)
//   packages/<pkg>/bundle/<tool>.main.cjs.cache  V8's code cache for it (see below)
//   packages/<pkg>/bundle/run-bundle.cjs         how the executable compiles and runs it
//                                                (scripts/bundle-runtime.cjs)
//   packages/<pkg>/bundle/inputs.json            the files the bundle was made from, so
//                                                pv-install can refuse a stale bundle
//   packages/<pkg>/bundle/package.json           the bundle is CommonJS
//
// Why: a tool loading its modules from many files spends 130-220 ms of CPU
// before doing anything; one file halves that (README "Performance").
//
// Why CommonJS and a code cache: a pipeline tool's start is ~60 ms of CPU,
// of which bare Node is ~20; compiling the bundle is ~10 ms of the rest.
// Node 20 has no compile cache of its own (module.enableCompileCache came in
// 22), but vm.Script takes V8's code cache for a script, not for an ES
// module, so the bundle is one CommonJS file compiled through vm.Script with
// the cache made here. The cache is made by running the tool once on an
// empty valet root (the pipeline tools, where that does nothing), so it
// holds the functions a run compiles, not only the top level; other tools
// get the top level only. V8 checks a cache against its version, its flags
// and the source's length, and rejects one that does not match: the tool
// then compiles as if there were none (a Node upgrade costs speed, not
// correctness). The cache is made and deployed with the bundle, root-owned
// like it: nothing writes it at run time.
//
// The bundle sits where dist/ does (packages/<pkg>/<dir>/), so paths that a
// tool takes from its own location (pv-web's public/, pv-install's checkout)
// stay the same (import.meta.url is the bundle file's URL). Dependencies
// stay in the bundle's node_modules lookup path too, so anything left
// external still resolves.
//
// A bundle whose inputs are unchanged is kept (so `make build` on a built tree
// is quick and rewrites nothing another process may be reading); --force
// rebuilds. A new bundle is made beside the old one and renamed into place.
//
//   node scripts/bundle.mjs [--only pv-x,pv-y] [--force] [--quiet]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
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

/**
 * The executable: plain JavaScript, so that `--help` costs Node's start and
 * one write. Anything else compiles the bundle with its code cache (when V8
 * accepts it) and runs it as Node would run a CommonJS main module.
 */
export function launcherSource(tool, help) {
  return [
    '#!/usr/bin/env node',
    `// Made by scripts/bundle.mjs from bin/${tool}.js (make build): do not edit.`,
    '// `--help` alone prints the text rendered at build time without loading any',
    '// module; everything else runs the bundle, where yargs still parses and helps.',
    "'use strict';",
    'const args = process.argv.slice(2);',
    "if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {",
    `  process.stdout.write(${JSON.stringify(help)});`,
    '} else {',
    "  const { compileBundle, runBundle } = require('./run-bundle.cjs');",
    `  const file = require('node:path').join(__dirname, ${JSON.stringify(`${tool}.main.cjs`)});`,
    '  runBundle(compileBundle(file, true), file, module);',
    '}',
    '',
  ].join('\n');
}

// CommonJS output: import.meta does not exist there, and the tools' code
// and ES-module dependencies (yargs) use import.meta.url for their own place.
const IMPORT_META_BANNER = "const __pvImportMetaUrl = require('node:url').pathToFileURL(__filename).href;";

/**
 * Make `<bundle>.cache`: compile the bundle in a fresh Node, run the tool
 * once when `warm` gives its arguments (its stdin empty, on an empty valet
 * root), and write the code cache V8 has then (scripts/code-cache.cjs).
 */
function writeCodeCache(bundleFile, warm) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-code-cache-'));
  try {
    const args = [];
    if (warm) {
      for (const d of ['inbox', 'processed', 'finished', 'repos']) fs.mkdirSync(path.join(scratch, d));
      const config = path.join(scratch, 'prompt-valet.yaml');
      fs.writeFileSync(config, ['inbox', 'processed', 'finished'].map((d) => `${d}: ${path.join(scratch, d)}`).join('\n') +
        `\nrepos_root: ${path.join(scratch, 'repos')}\ngit_owner: acme\nwatcher:\n  runner_cmd: /bin/true\n`);
      args.push('--run', ...warm(config));
    }
    // pv-claim claims only under a claim lock on fd 9 (docs/lifecycle.md): the warm-up holds one.
    const lock = path.join(scratch, 'processed', '.ledger', 'locks', 'warm-up.lock');
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    const command = [process.execPath, path.join(root, 'scripts', 'code-cache.cjs'), bundleFile, ...args];
    execFileSync('/bin/sh', ['-c', 'exec 9<>"$0" && flock -n 9 && exec "$@"', lock, ...command], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 60_000,
      cwd: scratch,
      env: { PATH: process.env.PATH, HOME: scratch, NO_COLOR: '1', LANG: 'C.UTF-8', PV_CLAIM_LOCK: 'warm-up' },
    });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The tools a run starts, and how to run each once harmlessly for its
 * cache: on an empty valet root each reads its config and finds no work.
 */
const WARM_RUNS = {
  'pv-claim': (config) => ['--config', config, '--limit', '1'],
  'pv-resolve': (config) => ['--config', config],
  'pv-clone': (config) => ['--config', config],
  'pv-run-codex': (config) => ['--config', config],
  'pv-publish': (config) => ['--config', config],
  'pv-settle': (config) => ['--config', config],
};

export async function bundleTool({ dir, tool, bin }, top = root) {
  const final = path.join(dir, BUNDLE_DIR);
  const out = `${final}.new-${process.pid}`;
  fs.rmSync(out, { recursive: true, force: true });
  const main = path.join(out, `${tool}.main.cjs`);
  const result = await esbuild.build({
    entryPoints: [path.join(dir, bin)],
    outfile: main,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    define: { 'import.meta.url': '__pvImportMetaUrl' },
    banner: { js: IMPORT_META_BANNER },
    metafile: true,
    logLevel: 'warning',
    absWorkingDir: top,
  });
  // vm.Script compiles a function body: the bin's "#!" line must go (a comment keeps the length).
  fs.writeFileSync(main, fs.readFileSync(main, 'utf8').replace(/^#!/, '//'));
  const help = helpText(path.join(dir, bin));
  const launcher = path.join(out, `${tool}.js`);
  fs.writeFileSync(launcher, launcherSource(tool, help), { mode: 0o755 });
  fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');
  fs.copyFileSync(path.join(top, 'scripts', 'bundle-runtime.cjs'), path.join(out, 'run-bundle.cjs'));
  writeCodeCache(main, WARM_RUNS[tool]);
  // npm stamps the files it unpacks with a fixed old date, so a dependency
  // updated by npm ci looks older than any bundle: its install record (npm
  // rewrites it on every install) stands for all of node_modules.
  const installRecord = path.join('node_modules', '.package-lock.json');
  const extra = fs.existsSync(path.join(top, installRecord)) ? [installRecord] : [];
  // How the bundle is made is an input too: a new bundler remakes every bundle.
  for (const maker of ['scripts/bundle.mjs', 'scripts/bundle-runtime.cjs', 'scripts/code-cache.cjs']) if (fs.existsSync(path.join(top, maker))) extra.push(maker);
  const inputs = [...Object.keys(result.metafile.inputs), ...extra].sort();
  // Written last: its time stamp is the bundle's (see bundleState in core).
  fs.writeFileSync(path.join(out, BUNDLE_INPUTS_FILE), JSON.stringify({ tool, inputs }, null, 1) + '\n');
  const old = `${final}.old-${process.pid}`;
  if (fs.existsSync(final)) fs.renameSync(final, old);
  fs.renameSync(out, final);
  fs.rmSync(old, { recursive: true, force: true });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  return { tool, files: Object.keys(result.metafile.outputs).length + 3, bytes, inputs: inputs.length };
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
