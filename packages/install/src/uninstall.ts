import * as fs from 'node:fs';
import * as path from 'node:path';
import { isOwnFile, removePath } from './fs-actions.js';
import { LEGACY_REPOS, OWN_MARKER, type Layout } from './layout.js';
import type { Reporter } from './report.js';
import { runAction } from './system.js';
import { CORE_UNITS, COPYPARTY_UNIT, RESULTS_UNIT, unitPath, WEB_UNIT, WORKER_UNIT } from './units.js';

/**
 * Remove what pv-install put down: its units, the copyparty mask, scripts/
 * and the /srv/repos link. Never the operator's inbox, processed, finished,
 * repos, nor config/ (their settings, tokens and logins) or logs/.
 */
export function uninstall(r: Reporter, layout: Layout): void {
  const units = [...CORE_UNITS, COPYPARTY_UNIT, WEB_UNIT, RESULTS_UNIT, WORKER_UNIT];
  if (layout.live) {
    const ours = units.filter((u) => isOwnFile(unitPath(layout, u), OWN_MARKER));
    if (ours.length) runAction(r, 'systemd', 'systemctl', ['disable', '--now', ...ours]);
  }
  for (const u of units) {
    const file = unitPath(layout, u);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink() && u === COPYPARTY_UNIT && fs.readlinkSync(file) === '/dev/null') {
      removePath(r, file, 'mask set by pv-install --file-server none');
    } else if (st.isFile() && isOwnFile(file, OWN_MARKER)) {
      removePath(r, file);
    } else {
      r.emit('skipped', file, 'not written by pv-install');
    }
  }
  if (layout.live) runAction(r, 'systemd', 'systemctl', ['daemon-reload']);
  const scripts = layout.disk(layout.scripts);
  if (fs.existsSync(scripts)) removePath(r, scripts);
  const legacy = layout.disk(LEGACY_REPOS);
  const st = fs.lstatSync(legacy, { throwIfNoEntry: false });
  if (st?.isSymbolicLink() && fs.readlinkSync(legacy) === path.posix.join(layout.prefix, 'repos')) removePath(r, legacy, 'legacy link');
  for (const kept of ['inbox', 'processed', 'finished', 'repos', 'config', 'logs']) {
    const p = layout.disk(path.posix.join(layout.prefix, kept));
    if (fs.existsSync(p)) r.emit('skipped', p, 'operator data: kept');
  }
}
