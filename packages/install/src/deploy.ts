import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUNDLE_DIR, bundleState, staleBundleLine } from '@prompt-valet/core';
import { syncFile, type FileOutcome } from './fs-actions.js';
import type { Layout } from './layout.js';
import type { Reporter } from './report.js';

/**
 * Deploying the built tools so they run with only `node`:
 *
 *   scripts/pv-<tool>            relative symlink to the tool's bundle
 *                                (packages/<pkg>/bundle/<tool>.js, made by `make
 *                                build`: one file to load, and --help without
 *                                loading anything; see scripts/bundle.mjs)
 *   scripts/lib/node_modules/    @prompt-valet/<pkg> (package.json, bin, dist, bundle, public)
 *                                and every production dependency, at the same
 *                                place under node_modules as in the checkout,
 *                                so Node resolves them as it did in the build
 *   scripts/lib/docs/            the project's docs (units link to install.md)
 *
 * Deployed are every workspace package with a `bin`, and the closure of their
 * `dependencies` (never devDependencies: testkit, tap, typescript, codex,
 * playwright stay behind). Everything under scripts/ belongs to the installer
 * and is kept in step with the checkout: stale files there are removed.
 * The bundles need none of node_modules; dist/ and the dependencies stay
 * deployed so that bin/<tool>.js (the unbundled tool) still runs there too.
 */

interface PackageJson {
  name?: string;
  version?: string;
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

export interface DeployedPackage {
  name: string;
  version: string;
  /** where it comes from (real path) */
  source: string;
  /** under scripts/, e.g. lib/node_modules/yargs */
  dest: string;
  workspace: boolean;
}

export interface DeployPlan {
  packages: DeployedPackage[];
  /** scripts/<name> -> relative target */
  entries: { name: string; target: string }[];
  docs: string | undefined;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

function binEntries(pkg: PackageJson): [string, string][] {
  if (!pkg.bin) return [];
  if (typeof pkg.bin === 'string') return [[pkg.name!.split('/').pop()!, pkg.bin]];
  return Object.entries(pkg.bin);
}

/** Node's lookup: node_modules/<name> in this folder and each parent, up to the checkout. */
function findDependency(name: string, fromDir: string, top: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const cand = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'package.json'))) return fs.realpathSync(cand);
    if (dir === top || dir === path.dirname(dir)) return undefined;
  }
}

export class DeployError extends Error {}

export function planDeployment(source: string): DeployPlan {
  const top = fs.realpathSync(source);
  const packagesDir = path.join(top, 'packages');
  const workspaces = new Map<string, string>(); // real dir -> package name
  for (const d of fs.readdirSync(packagesDir).sort()) {
    const dir = path.join(packagesDir, d);
    if (!fs.existsSync(path.join(dir, 'package.json'))) continue;
    workspaces.set(dir, readPackageJson(dir).name ?? d);
  }
  const destOf = (real: string): string => {
    for (const [dir, name] of workspaces) {
      if (real === dir || real.startsWith(dir + path.sep)) {
        return path.join('lib', 'node_modules', name, path.relative(dir, real));
      }
    }
    const rel = path.relative(top, real);
    if (!rel.startsWith('node_modules' + path.sep)) throw new DeployError(`dependency outside the checkout: ${real}`);
    return path.join('lib', rel);
  };

  const packages: DeployedPackage[] = [];
  const entries: DeployPlan['entries'] = [];
  const seen = new Set<string>();
  const queue: string[] = [];
  for (const [dir] of workspaces) {
    const pkg = readPackageJson(dir);
    const bins = binEntries(pkg);
    if (bins.length === 0) continue;
    if (!fs.existsSync(path.join(dir, 'dist'))) {
      throw new DeployError(`${pkg.name} is not built (no ${path.join(dir, 'dist')}): run npx tsc -b first`);
    }
    for (const [bin] of bins) {
      // What the tests ran (dist/) is what is deployed: a bundle older than its inputs is refused.
      const stale = staleBundleLine(bin, bundleState(top, dir, bin));
      if (stale) throw new DeployError(stale);
      entries.push({ name: bin, target: path.join(destOf(dir), BUNDLE_DIR, `${bin}.js`) });
    }
    queue.push(dir);
  }
  while (queue.length > 0) {
    const dir = queue.shift()!;
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = readPackageJson(dir);
    packages.push({ name: pkg.name ?? path.basename(dir), version: pkg.version ?? '', source: dir, dest: destOf(dir), workspace: workspaces.has(dir) });
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      const found = findDependency(dep, dir, top);
      if (!found) throw new DeployError(`${pkg.name} needs ${dep}, which is not installed in ${top}: run npm ci first`);
      queue.push(found);
    }
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
      const found = findDependency(dep, dir, top);
      if (found) queue.push(found);
    }
  }
  packages.sort((a, b) => a.dest.localeCompare(b.dest));
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const docs = fs.existsSync(path.join(top, 'docs')) ? path.join(top, 'docs') : undefined;
  return { packages, entries, docs };
}

/** The files of one package to deploy, as paths relative to the package. */
function packageFiles(pkg: DeployedPackage): string[] {
  // `public` is pv-web's page (static files served as they are).
  const roots = pkg.workspace ? ['package.json', 'README.md', 'bin', 'dist', BUNDLE_DIR, 'public'] : ['.'];
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = path.join(pkg.source, rel);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) {
        // Nested dependencies are packages of their own; the rest is noise.
        if (name === 'node_modules' || name === '.tsbuildinfo' || name.endsWith('.tsbuildinfo')) continue;
        walk(path.join(rel, name));
      }
    } else if (st.isFile()) {
      out.push(path.normalize(rel));
    }
  };
  for (const r of roots) walk(r);
  return out;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Bring scripts/ in step with the plan; one report line per package and entry point. */
export async function deploy(r: Reporter, layout: Layout, plan: DeployPlan): Promise<void> {
  const scripts = layout.disk(layout.scripts);
  const wanted = new Set<string>();
  const syncTree = async (label: string, dest: string, srcDir: string, files: string[], detail: string) => {
    const existed = fs.existsSync(path.join(scripts, dest));
    let changed = 0;
    if (!r.dryRun) fs.mkdirSync(path.join(scripts, dest), { recursive: true });
    for (const rel of files) {
      const src = path.join(srcDir, rel);
      const to = path.join(scripts, dest, rel);
      wanted.add(to);
      const mode = fs.statSync(src).mode & 0o777;
      const outcome: FileOutcome = await syncFile(to, fs.readFileSync(src), mode, r.dryRun);
      if (outcome !== 'unchanged') changed++;
    }
    const action = !existed ? 'created' : changed > 0 ? 'updated' : 'unchanged';
    r.emit(action, path.join(scripts, dest), `${label}${detail}${changed && existed ? `, ${changed} file(s) changed` : ''}`);
  };
  for (const pkg of plan.packages) {
    await syncTree(`${pkg.name}@${pkg.version}`, pkg.dest, pkg.source, packageFiles(pkg), '');
  }
  if (plan.docs) {
    const files = listFiles(plan.docs).map((f) => path.relative(plan.docs!, f));
    await syncTree('docs', path.join('lib', 'docs'), plan.docs, files, '');
  }
  for (const stale of listFiles(path.join(scripts, 'lib'))) {
    if (wanted.has(stale)) continue;
    if (!r.dryRun) fs.rmSync(stale, { force: true });
    r.emit('removed', stale, 'no longer part of the build');
  }
  for (const e of plan.entries) {
    const link = path.join(scripts, e.name);
    let current: string | undefined;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current === e.target) {
      r.emit('unchanged', link, `-> ${e.target}`);
      continue;
    }
    const action = current === undefined && !fs.existsSync(link) ? 'created' : 'updated';
    if (!r.dryRun) {
      fs.mkdirSync(scripts, { recursive: true });
      fs.rmSync(link, { force: true });
      fs.symlinkSync(e.target, link);
    }
    r.emit(action, link, `-> ${e.target}`);
  }
}
