// A retry hands its run on (docs/lifecycle.md, "A run resumes"): pv-settle puts
// x.running.md back to x.prompt.md, and with no backoff a claimer may resume it
// at once (pv-watcher's waiting claimer is told by the rename's file event, in
// a few ms). Here the real pv-claim runs in the very instant after pv-settle's
// rename, through a stand-in mv, and the two must not both act on the run:
// one running file, held by the new claim, and no second pending name for the
// same run (seen once in crash-points.test.ts: the retry moved the new claim's
// x.running.md on to x.2.prompt.md, two pipelines ran the run, it settled as
// x.2.done.md and its status stayed "published").
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listRetryEntries, readRunStatus, type ClaimRecord, type PvRecord } from '@prompt-valet/core';
import { binPath, claimLockedCommand, makeValetRoot, parseRecords, runBin, shQuote } from '@prompt-valet/testkit';

t.test('a claimer that resumes the run right after the retry\'s rename keeps it: one running file, its record, its status', async (t) => {
  const r = await makeValetRoot({ watcher: { retry_backoff_seconds: 0 } });
  t.teardown(() => r.cleanup());
  await r.dropPrompt('widget/main/task.prompt.md', 'the prompt\n');
  const first = await runBin('pv-claim', ['--config', r.configPath, '--limit', '1'], { claimLockIn: r.processed });
  const rec = first.records[0]!;
  t.ok(rec?.claim, `the first claim (${first.stderr.trim()})`);

  // mv, then (once) the claimer: the real pv-claim under a claim lock of its own, its records kept aside.
  const bin = path.join(r.root, 'bin');
  fs.mkdirSync(bin);
  const armed = path.join(r.root, 'armed');
  const claimed = path.join(r.root, 'claimed.jsonl');
  const claimer = claimLockedCommand(r.processed, `${shQuote(process.execPath)} ${shQuote(binPath('pv-claim'))} --config ${shQuote(r.configPath)} --limit 1`, 'resumer');
  fs.writeFileSync(path.join(bin, 'mv'), [
    '#!/bin/sh',
    '/usr/bin/mv "$@" || exit $?',
    'eval "dest=\\${$#}"',
    'case "$dest" in *.prompt.md)',
    `  if rm ${shQuote(armed)} 2>/dev/null; then sh -c ${shQuote(claimer)} >${shQuote(claimed)} 2>${shQuote(`${claimed}.err`)}; fi;;`,
    'esac',
    '',
  ].join('\n'), { mode: 0o755 });
  fs.writeFileSync(armed, '');

  const gh = { step: 'publish', code: 'gh_failed', message: 'gh pr create: HTTP 502', retryable: true };
  const settled = await runBin('pv-settle', ['--config', r.configPath], {
    input: [{ ...rec, error: gh } as PvRecord],
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
  t.equal(settled.code, 0, settled.stderr);
  t.notOk(fs.existsSync(armed), 'the claimer ran inside the retry\'s move');
  const resumed = parseRecords(fs.readFileSync(claimed, 'utf8'));
  t.match(resumed, [{ run_id: rec.run_id, claim: { attempt: 2, resumed: 1, rel: 'widget/main/task.running.md' } }],
    `the claimer resumed the run (${fs.readFileSync(`${claimed}.err`, 'utf8').trim()})`);

  const folder = path.join(r.inbox, 'widget/main');
  t.match(settled.records[0]!.settle, { state: 'pending', path: path.join(folder, 'task.prompt.md') }, 'the retry went to x.prompt.md');
  t.same(fs.readdirSync(folder), ['task.running.md'], 'the new claim\'s running file stays; no x.2.prompt.md');
  t.same(await listRetryEntries(r.processed), [], 'no retry entry left to start the run a second time');

  const recordFile = path.join(r.processed, '.ledger', 'claims', `${rec.run_id}.json`);
  const record = fs.existsSync(recordFile) ? (JSON.parse(fs.readFileSync(recordFile, 'utf8')) as ClaimRecord) : 'no claim record';
  t.match(record, { attempt: 2, liveness: { kind: 'local', lock: 'resumer' } }, 'the new claim\'s record stands: recovery can resume it if its pipeline dies');
  t.match(await readRunStatus(rec.claim!.run_root), { state: 'claimed', attempt: 2, resumed: 1 }, 'the status says the new claim, not the retry before it');
});
