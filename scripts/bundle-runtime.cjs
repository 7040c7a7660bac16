// How a tool's bundle is compiled and run (scripts/bundle.mjs). Copied into
// each bundle folder as run-bundle.cjs, where the tool's executable uses it,
// and used by scripts/code-cache.cjs to make the bundle's code cache: the
// cache only fits when both compile the very same source the same way
// (V8 checks the source's length, its version and flags, and rejects it
// otherwise), so there is one definition of that here.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

/** Where a bundle's code cache is: beside it. */
const codeCacheFile = (file) => `${file}.cache`;

/** The bundle as a script (a CommonJS module body); `withCache`: with its code cache, when there is one. */
function compileBundle(file, withCache) {
  let cachedData;
  if (withCache) {
    try {
      cachedData = fs.readFileSync(codeCacheFile(file));
    } catch {
      // no cache: V8 compiles the bundle as usual
    }
  }
  return new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
}

/** Run the compiled bundle as Node runs a CommonJS module: its own module object, require, __filename, __dirname. */
function runBundle(script, file, parent) {
  const mod = new Module(file, parent);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  mod.loaded = true;
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
}

module.exports = { codeCacheFile, compileBundle, runBundle };
