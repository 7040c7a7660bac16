import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { LEDGER_DIR } from './prompt-ledger.js';
import { PvError } from './errors.js';
import { expectErrno } from './files.js';

/**
 * Locks the kernel drops (docs/lifecycle.md, "The claim lock"). A flock(2)
 * lock belongs to an open file description: Node opens the file and lends
 * the descriptor to `/usr/bin/flock` (Node has no flock), which locks it and
 * exits; the lock stays with the open file until every descriptor of it is
 * closed — by release(), or by the death of every process holding one.
 */
export interface Lock {
  /** the descriptor of the locked open file (pass it to children to share the lock) */
  readonly fd: number;
  readonly file: string;
  /** close this process's descriptor (the lock ends once no other process holds one) */
  release(): Promise<void>;
}

/** The descriptor a pipeline's steps inherit the claim lock on. */
export const CLAIM_LOCK_FD = 9;

/** The environment variable naming the inherited claim lock's id. */
export const CLAIM_LOCK_ENV = 'PV_CLAIM_LOCK';

export class LockError extends PvError {
  constructor(message: string) {
    super('lock_failed', message);
  }
}

/**
 * Take an exclusive lock on `file` (created if missing). Non-blocking by
 * default: undefined when someone else holds it. With `wait` (seconds),
 * waits that long first.
 */
export async function takeLock(file: string, opts: { wait?: number } = {}): Promise<Lock | undefined> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  let locked: boolean;
  try {
    const how = opts.wait === undefined ? ['--nonblock'] : ['--wait', String(Math.max(0, opts.wait))];
    locked = await new Promise<boolean>((resolve, reject) => {
      const child = spawn('flock', ['--exclusive', ...how, '3'], { stdio: ['ignore', 'ignore', 'pipe', fh.fd] });
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', (err) => reject(new LockError(`cannot run flock (util-linux): ${err.message}`)));
      child.once('exit', (c) => (c === 0 ? resolve(true) : c === 1 ? resolve(false) : reject(new LockError(`flock ${file}: ${stderr.trim() || `exit ${c}`}`))));
    });
  } catch (err) {
    await fh.close();
    throw err;
  }
  if (!locked) {
    await fh.close();
    return undefined;
  }
  let released = false;
  return {
    fd: fh.fd,
    file,
    async release() {
      if (released) return;
      released = true;
      await fh.close();
    },
  };
}

/** A fresh claim lock id: time (sorts), pid and randomness. */
export function newLockId(): string {
  return `${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

const LOCK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function isLockId(id: unknown): id is string {
  return typeof id === 'string' && LOCK_ID_RE.test(id);
}

export function claimLocksDir(processed: string): string {
  return path.join(path.resolve(processed), LEDGER_DIR, 'locks');
}

/** `processed/.ledger/locks/<id>.lock`; throws for an id that could name another place. */
export function claimLockPath(processed: string, id: string): string {
  if (!isLockId(id)) throw new LockError(`claim lock id ${JSON.stringify(id)} is not a lock id (letters, digits, - and _)`);
  return path.join(claimLocksDir(processed), `${id}.lock`);
}

/**
 * The claim lock this process inherited, if any: `PV_CLAIM_LOCK` names it,
 * and some descriptor of this process is that file, open and holding the
 * flock (its `/proc/self/fdinfo` lists the lock). Anything less is no lock:
 * a claim made without one could not be told apart from a dead one.
 */
export function inheritedClaimLock(env: NodeJS.ProcessEnv, processed: string): { id: string; fd: number } | undefined {
  const id = env[CLAIM_LOCK_ENV];
  if (!isLockId(id)) return undefined;
  const file = claimLockPath(processed, id);
  let want: fs.Stats;
  try {
    want = fs.statSync(file);
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return undefined;
  }
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch (err) {
    expectErrno(err, 'ENOENT');
    return undefined;
  }
  // The conventional descriptor first; any other one will do.
  const order = [String(CLAIM_LOCK_FD), ...fds.filter((f) => f !== String(CLAIM_LOCK_FD))];
  for (const fd of order) {
    try {
      const st = fs.fstatSync(Number(fd));
      if (st.ino !== want.ino || st.dev !== want.dev) continue;
      const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      if (/^lock:.*FLOCK\s+ADVISORY\s+WRITE/m.test(info)) return { id, fd: Number(fd) };
    } catch (err) {
      expectErrno(err, 'EBADF', 'ENOENT');
      continue;
    }
  }
  return undefined;
}
