import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/**
 * A stand-in for a program (`git`, `gh`, `mv`, the runner) that runs the
 * real one, except when one of its arguments matches `pattern` (a shell
 * `case` pattern: `push`, `*.done.md`): then it touches `marker` and sleeps,
 * before or after running the real program. It marks the moment a crash
 * test kills the valet: "after the push landed", "between the two renames".
 * Put its folder first on PATH, or name it in the config (gh_cmd, runner_cmd).
 */
export interface HangSpec {
  /** folder to write it into */
  dir: string;
  /** the file name (`git`) */
  name: string;
  /** absolute path of the real program */
  real: string;
  pattern: string;
  when: 'before' | 'after';
  marker: string;
  /** how long it hangs (default 120 s; tests kill it long before) */
  seconds?: number;
}

export async function writeHangingWrapper(spec: HangSpec): Promise<string> {
  await fsp.mkdir(spec.dir, { recursive: true });
  const file = path.join(spec.dir, spec.name);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const hang = `touch ${q(spec.marker)}; sleep ${spec.seconds ?? 120}`;
  await fsp.writeFile(file, [
    '#!/bin/sh',
    'hit=',
    `for a in "$@"; do case "$a" in ${spec.pattern}) hit=1 ;; esac; done`,
    `[ -z "$hit" ] && exec ${q(spec.real)} "$@"`,
    ...(spec.when === 'before' ? [hang, `exec ${q(spec.real)} "$@"`] : [`${q(spec.real)} "$@"`, 'rc=$?', hang, 'exit $rc']),
    '',
  ].join('\n'), { mode: 0o755 });
  return file;
}
