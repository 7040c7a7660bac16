#!/usr/bin/env node
// Writes V8's code cache for a tool's bundle (scripts/bundle.mjs):
//
//   node scripts/code-cache.cjs BUNDLE.main.cjs [--run ARG...]
//
// Compiles the bundle as its launcher does (scripts/bundle-runtime.cjs, so
// the cache matches what the launcher compiles). With --run, runs the tool
// once with those arguments first, so the cache also holds every function
// that run compiled; the cache is written when the process exits, whatever
// the tool's exit status (a warm-up that fails still compiled its code, and
// bundle.mjs says so). Writes BUNDLE.main.cjs.cache.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { codeCacheFile, compileBundle, runBundle } = require('./bundle-runtime.cjs');

const [file, flag, ...runArgs] = process.argv.slice(2);
if (!file || (flag !== undefined && flag !== '--run')) {
  process.stderr.write('usage: node scripts/code-cache.cjs BUNDLE.main.cjs [--run ARG...]\n');
  process.exit(64);
}
const script = compileBundle(file, false);
process.on('exit', (code) => {
  fs.writeFileSync(codeCacheFile(file), script.createCachedData());
  if (code !== 0) process.stderr.write(`code-cache: ${path.basename(file)} warm-up run exited ${code}\n`);
  process.exitCode = 0;
});
if (flag === '--run') {
  process.argv = [process.argv[0], path.join(path.dirname(file), path.basename(file, '.main.cjs') + '.js'), ...runArgs];
  runBundle(script, file, module);
}
