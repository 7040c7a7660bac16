import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureFile, isOwnFile, removePath } from './fs-actions.js';
import { OWN_MARKER, UNIT_DIR, type Layout } from './layout.js';
import type { Reporter } from './report.js';

/** The unit templates in units/ and the values put into them. */
export const CORE_UNITS = ['codex-watcher.service', 'codex-tree-builder.service', 'codex-tree-builder.timer'] as const;
export const COPYPARTY_UNIT = 'copyparty.service';
export const WEB_UNIT = 'prompt-valet-web.service';
/** dispatch: nats (docs/scale-out.md): the valet's result receiver and a worker host's worker. */
export const RESULTS_UNIT = 'pv-results.service';
export const WORKER_UNIT = 'pv-worker.service';
export type Role = 'valet' | 'worker' | 'both';
export const ROLES: readonly Role[] = ['valet', 'worker', 'both'];

/** The units a role installs and enables; without --role, the one-host set as before. */
export function roleUnits(role: Role | undefined): { install: string[]; enable: string[] } {
  const valet = { install: [...CORE_UNITS, RESULTS_UNIT], enable: [...ENABLE_CORE, RESULTS_UNIT] };
  if (role === undefined) return { install: [...CORE_UNITS], enable: [...ENABLE_CORE] };
  if (role === 'worker') return { install: [WORKER_UNIT], enable: [WORKER_UNIT] };
  if (role === 'valet') return valet;
  return { install: [...valet.install, WORKER_UNIT], enable: [...valet.enable, WORKER_UNIT] };
}

/** A ready single-host NATS server with JetStream, for the valet host (docs/scale-out.md). */
export const NATS_SERVER_CONF = 'nats-server.conf';
/** The two NATS identities pv-install --role valet makes (user nkey seeds, config/nats/). */
export const NATS_NKEY_FILES = { valet: ['nats', 'valet.nk'], worker: ['nats', 'worker.nk'] } as const;

/** The public nkeys (U…) of the two roles, and the names the queue uses (pv-queue's defaults). */
export interface NatsAuthUsers {
  valet: string;
  worker: string;
  jobsStream?: string;
  jobsStem?: string;
  resultsStem?: string;
  logsStem?: string;
}

/**
 * What each role may do (docs/scale-out.md, "Identities"). The valet owns the
 * streams (JetStream API), sends jobs, takes results and live log lines. A
 * worker may only read its shared consumer, take the next job, ack or renew
 * it, and publish results and log lines: not jobs, not the results stream,
 * no stream or consumer made or deleted.
 */
export function natsPermissions(u: NatsAuthUsers): { valet: NatsPermissions; worker: NatsPermissions } {
  const jobs = u.jobsStream ?? 'PV_JOBS';
  const jobsStem = u.jobsStem ?? 'jobs';
  const resultsStem = u.resultsStem ?? 'results';
  const logsStem = u.logsStem ?? 'logs';
  return {
    valet: {
      publish: { allow: [`${jobsStem}.>`, '$JS.API.>', '$JS.ACK.>', '_INBOX.>'] },
      subscribe: { allow: ['_INBOX.>', `${logsStem}.>`, '$JS.EVENT.ADVISORY.>'] },
    },
    worker: {
      publish: {
        allow: [
          `${resultsStem}.>`,
          `${logsStem}.>`,
          '$JS.API.INFO',
          `$JS.API.CONSUMER.INFO.${jobs}.pv-workers`,
          `$JS.API.CONSUMER.MSG.NEXT.${jobs}.pv-workers`,
          `$JS.ACK.${jobs}.>`,
        ],
        deny: [`${jobsStem}.>`, '$JS.API.STREAM.>'],
      },
      subscribe: { allow: ['_INBOX.>'] },
    },
  };
}
export interface NatsPermissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[] };
}

const confList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
function renderPermissions(p: NatsPermissions): string {
  const publish = `publish: { allow: ${confList(p.publish.allow)}${p.publish.deny ? `, deny: ${confList(p.publish.deny)}` : ''} }`;
  return `{
        ${publish}
        subscribe: { allow: ${confList(p.subscribe.allow)} }
      }`;
}

/** The server config: pure (public keys in, text out). Without users, no authorization (anyone connecting may do anything). */
export function renderNatsServerConf(users?: NatsAuthUsers): string {
  let auth = '';
  if (users) {
    const perms = natsPermissions(users);
    auth = `authorization {
  users = [
    # valet (config/nats/valet.nk): the streams, jobs out, results and log lines in
    { nkey: ${users.valet}, permissions: ${renderPermissions(perms.valet)} }
    # worker (config/nats/worker.nk): next job, ack, results and log lines out; nothing else
    { nkey: ${users.worker}, permissions: ${renderPermissions(perms.worker)} }
  ]
}
`;
  }
  return `# Written by pv-install for dispatch: nats on one host (docs/scale-out.md); yours to
# edit, never overwritten. Run: nats-server -c <this file> (Debian: point
# nats-server.service at it). Workers on other hosts need listen on an
# address they reach, with TLS (tls { … }).
server_name: prompt-valet
listen: 127.0.0.1:4222
jetstream {
  store_dir: /var/lib/nats/jetstream
}
${auth}`;
}

/** pv-web's socket under the web unit's RuntimeDirectory=. */
export const WEB_SOCKET = '/run/prompt-valet-web/web.sock';
/** What `systemctl enable` is given: the tree builder service runs from its timer. */
export const ENABLE_CORE = ['codex-watcher.service', 'codex-tree-builder.timer'] as const;

export interface UnitValues {
  PREFIX: string;
  CONFIG: string;
  USER: string;
  GROUP: string;
  /** members may drop prompts; pv-web's socket belongs to it */
  DROP_GROUP: string;
  COPYPARTY_USER: string;
  INBOX: string;
  PROCESSED: string;
  FINISHED: string;
  /** space-separated folders the pipeline writes (statePathValues) */
  STATE_PATHS: string;
  /** space-separated folders inside STATE_PATHS kept read-only (may be empty) */
  READONLY_PATHS: string;
  COPYPARTY: string;
}

export function renderUnit(template: string, values: UnitValues, name: string): string {
  const out = template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    const v = (values as unknown as Record<string, string | undefined>)[key];
    if (v === undefined) throw new Error(`units/${name}: unknown placeholder ${whole}`);
    return v;
  });
  return out;
}

export function unitPath(layout: Layout, name: string): string {
  return layout.disk(path.posix.join(UNIT_DIR, name));
}

/** Write one unit; a unit of the same name that pv-install did not write is left alone. */
export async function installUnit(r: Reporter, layout: Layout, templatesDir: string, name: string, values: UnitValues): Promise<boolean> {
  const text = renderUnit(fs.readFileSync(path.join(templatesDir, name), 'utf8'), values, name);
  const file = unitPath(layout, name);
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (st && (st.isSymbolicLink() || !isOwnFile(file, OWN_MARKER))) {
    if (st.isSymbolicLink() && fs.readlinkSync(file) === '/dev/null' && name === COPYPARTY_UNIT) {
      // Masked by an earlier `--file-server none`: choosing copyparty unmasks it.
      removePath(r, file, 'unmasked');
    } else {
      r.emit('warning', file, 'exists and was not written by pv-install: left alone');
      return false;
    }
  }
  await ensureFile(r, file, text, 0o644);
  return true;
}

/** Mask a unit the way `systemctl mask` does: a link to /dev/null. */
export function maskUnit(r: Reporter, layout: Layout, name: string): void {
  const file = unitPath(layout, name);
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (st?.isSymbolicLink() && fs.readlinkSync(file) === '/dev/null') {
    r.emit('unchanged', file, 'masked');
    return;
  }
  if (st && !isOwnFile(file, OWN_MARKER)) {
    r.emit('warning', file, 'exists and was not written by pv-install: not masked, left alone');
    return;
  }
  if (!r.dryRun) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.rmSync(file, { force: true });
    fs.symlinkSync('/dev/null', file);
  }
  r.emit(st ? 'updated' : 'created', file, 'masked (-> /dev/null)');
}

/**
 * The folders a unit may write, as ReadWritePaths= and ReadOnlyPaths= values.
 * systemd makes each ReadWritePaths= entry a bind mount of its own, and
 * rename(2) fails with EXDEV between two mounts even on one filesystem: mv
 * then copies, which needs to read the file (a prompt the service cannot read
 * could not be filed as an error) and is not atomic. So when every state
 * folder lies under the prefix, the prefix is one writable mount and the
 * install's own files (config/, scripts/) are made read-only again; a more
 * specific entry wins. Otherwise (folders moved elsewhere by the config)
 * each is listed on its own.
 */
export function statePathValues(prefix: string, statePaths: string[], readOnlyInPrefix: string[]): { writable: string; readOnly: string } {
  const inside = (p: string) => p === prefix || p.startsWith(`${prefix}/`);
  if (statePaths.every(inside)) return { writable: prefix, readOnly: readOnlyInPrefix.join(' ') };
  return { writable: statePaths.join(' '), readOnly: '' };
}
