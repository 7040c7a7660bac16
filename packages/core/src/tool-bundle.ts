import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectErrno, expectSyntaxError } from './files.js';

/**
 * A tool's bundle (scripts/bundle.mjs, `make build`): packages/<pkg>/bundle/
 * holds `<tool>.js` (the executable pv-install deploys), `<tool>.main.js`
 * and its chunks, and `inputs.json`, the files the bundle was made from
 * (relative to the checkout), written last.
 */
export const BUNDLE_DIR = 'bundle';
export const BUNDLE_INPUTS_FILE = 'inputs.json';

export interface BundleInputs {
  tool: string;
  /** paths relative to the checkout */
  inputs: string[];
}

/** Why a bundle cannot be deployed as it is, in one line; undefined when it can. */
export function staleBundleLine(tool: string, state: BundleState): string | undefined {
  if (state.fresh) return undefined;
  if (state.reason === 'missing') return `${tool} is not bundled: run make build`;
  const what = state.reason === 'input_gone' ? 'is gone' : 'changed after the bundle was made';
  return `${tool}'s bundle is stale (${state.input} ${what}): run make build`;
}

export type BundleState =
  | { fresh: true }
  | { fresh: false; reason: 'missing' }
  | { fresh: false; reason: 'input_changed' | 'input_gone'; input: string };

/**
 * Whether `packageDir/bundle/<tool>.js` is built from the files the checkout
 * has now: every input must exist and be no newer than inputs.json. A bundle
 * older than its dist/ would deploy code the tests never ran.
 */
export function bundleState(top: string, packageDir: string, tool: string): BundleState {
  const dir = path.join(packageDir, BUNDLE_DIR);
  let listed: BundleInputs;
  let builtAt: number;
  try {
    fs.accessSync(path.join(dir, `${tool}.js`));
    const inputsFile = path.join(dir, BUNDLE_INPUTS_FILE);
    builtAt = fs.statSync(inputsFile).mtimeMs;
    listed = JSON.parse(fs.readFileSync(inputsFile, 'utf8')) as BundleInputs;
  } catch (err) {
    // A torn inputs.json (a build cut short) is as good as none.
    if (err instanceof SyntaxError) expectSyntaxError(err);
    else expectErrno(err, 'ENOENT', 'ENOTDIR');
    return { fresh: false, reason: 'missing' };
  }
  for (const input of listed.inputs) {
    let mtime: number;
    try {
      mtime = fs.statSync(path.join(top, input)).mtimeMs;
    } catch (err) {
      expectErrno(err, 'ENOENT', 'ENOTDIR');
      return { fresh: false, reason: 'input_gone', input };
    }
    if (mtime > builtAt) return { fresh: false, reason: 'input_changed', input };
  }
  return { fresh: true };
}
