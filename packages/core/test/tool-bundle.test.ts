import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleState, staleBundleLine } from '../src/tool-bundle.js';
import { locateTool } from '../src/tools.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-bundle-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A checkout with packages/settle built and bundled as scripts/bundle.mjs leaves it, the bundle made at `builtAt`. */
function bundledCheckout(top: string, builtAt: Date): string {
  const pkg = path.join(top, 'packages', 'settle');
  fs.mkdirSync(path.join(pkg, 'dist'), { recursive: true });
  fs.mkdirSync(path.join(pkg, 'bundle'), { recursive: true });
  fs.writeFileSync(path.join(pkg, 'dist', 'main.js'), 'export {};\n');
  fs.writeFileSync(path.join(pkg, 'bundle', 'pv-settle.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
  const inputs = path.join(pkg, 'bundle', 'inputs.json');
  fs.writeFileSync(inputs, JSON.stringify({ tool: 'pv-settle', inputs: ['packages/settle/dist/main.js'] }));
  const before = new Date(builtAt.getTime() - 60_000);
  fs.utimesSync(path.join(pkg, 'dist', 'main.js'), before, before);
  fs.utimesSync(inputs, builtAt, builtAt);
  return pkg;
}

t.test('a bundle is fresh while no input is newer than it; stale or missing gets a line that says make build', async (t) => {
  const top = tmp(t);
  const now = new Date();
  const pkg = bundledCheckout(top, now);
  t.same(bundleState(top, pkg, 'pv-settle'), { fresh: true });
  t.equal(staleBundleLine('pv-settle', { fresh: true }), undefined);

  const later = new Date(now.getTime() + 5_000);
  fs.utimesSync(path.join(pkg, 'dist', 'main.js'), later, later);
  const changed = bundleState(top, pkg, 'pv-settle');
  t.same(changed, { fresh: false, reason: 'input_changed', input: 'packages/settle/dist/main.js' });
  t.equal(staleBundleLine('pv-settle', changed), "pv-settle's bundle is stale (packages/settle/dist/main.js changed after the bundle was made): run make build");

  fs.rmSync(path.join(pkg, 'dist', 'main.js'));
  t.same(bundleState(top, pkg, 'pv-settle'), { fresh: false, reason: 'input_gone', input: 'packages/settle/dist/main.js' });

  fs.writeFileSync(path.join(pkg, 'bundle', 'inputs.json'), '{"tool": "pv-se');
  t.same(bundleState(top, pkg, 'pv-settle'), { fresh: false, reason: 'missing' }, 'a torn inputs.json is no bundle');
  fs.rmSync(path.join(pkg, 'bundle'), { recursive: true });
  const missing = bundleState(top, pkg, 'pv-settle');
  t.same(missing, { fresh: false, reason: 'missing' });
  t.equal(staleBundleLine('pv-settle', missing), 'pv-settle is not bundled: run make build');
});

t.test('locateTool: a bundle starts the other tools bundled, a dist bin the other dist bins', async (t) => {
  const top = tmp(t);
  for (const pkg of ['watcher', 'claim']) {
    for (const dir of ['bin', 'bundle']) {
      fs.mkdirSync(path.join(top, 'packages', pkg, dir), { recursive: true });
      fs.writeFileSync(path.join(top, 'packages', pkg, dir, `pv-${pkg}.js`), '#!/usr/bin/env node\n', { mode: 0o755 });
    }
  }
  const env = {};
  t.equal(
    locateTool('pv-claim', { env, selfBin: path.join(top, 'packages/watcher/bundle/pv-watcher.js') }),
    path.join(fs.realpathSync(top), 'packages/claim/bundle/pv-claim.js'),
  );
  t.equal(
    locateTool('pv-claim', { env, selfBin: path.join(top, 'packages/watcher/bin/pv-watcher.js') }),
    path.join(fs.realpathSync(top), 'packages/claim/bin/pv-claim.js'),
  );
});
