import { randomBytes } from 'node:crypto';

/**
 * Run ids: `YYYYMMDD-HHMMSS-mmm-xxxxxxxx` (UTC time, milliseconds, 8 base-32
 * characters). They sort by time as plain strings, are valid inside a git
 * ref and a file name, and are unique across processes (40 random bits) and
 * within one process even in the same millisecond: the suffix of a second id
 * in the same millisecond is the previous one plus one (as in ULID's
 * monotonic mode), so ids from one process also sort in creation order.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base 32, lower case
const SUFFIX_LEN = 8;
const SUFFIX_SPACE = 32 ** SUFFIX_LEN; // 2^40

let lastMs = -1;
let lastSuffix = 0;

function encodeSuffix(n: number): string {
  let out = '';
  for (let i = 0; i < SUFFIX_LEN; i++) {
    out = ALPHABET[n % 32] + out;
    n = Math.floor(n / 32);
  }
  return out;
}

function randomSuffix(): number {
  const b = randomBytes(5);
  // 5 bytes = 40 bits; keep the top bit clear so many increments fit
  // before the suffix would wrap within one millisecond.
  return ((b[0]! & 0x7f) * 2 ** 32) + b.readUInt32BE(1);
}

export function newRunId(now: Date = new Date()): string {
  let ms = now.getTime();
  if (ms < lastMs) ms = lastMs; // clock stepped back: keep ids sorted
  let suffix: number;
  if (ms === lastMs) {
    suffix = lastSuffix + 1;
    if (suffix >= SUFFIX_SPACE) {
      ms += 1; // astronomically unlikely: borrow the next millisecond
      suffix = randomSuffix();
    }
  } else {
    suffix = randomSuffix();
  }
  lastMs = ms;
  lastSuffix = suffix;
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp =
    `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${p(d.getUTCMilliseconds(), 3)}`;
  return `${stamp}-${encodeSuffix(suffix)}`;
}

const RUN_ID_RE = /^\d{8}-\d{6}-\d{3}-[0-9a-hjkmnp-tv-z]{8}$/;

export function isRunId(s: string): boolean {
  return RUN_ID_RE.test(s);
}
