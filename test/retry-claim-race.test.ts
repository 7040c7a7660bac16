// A retry hands its run on (docs/lifecycle.md, "Handing a run on"): pv-settle
// puts x.running.md back to x.prompt.md, and with no backoff a claimer may look
// at once (pv-watcher's waiting claimer is told by the rename's file event, in
// a few ms). Here the real pv-claim runs in the very instant after pv-settle's
// rename, through a stand-in mv. The run's claim record still stands then, so
// the claimer leaves the prompt alone; once pv-settle has let go, the next
// look resumes the run. Before: the claimer took the file back at once,
// pv-settle took its own renamed file for a taken name and moved the new
// claim's x.running.md on to x.2.prompt.md, two pipelines ran the run (seen
// once in crash-points.test.ts: settled as x.2.done.md, status "published").
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listRetryEntries, readRunStatus, type ClaimRecord, type PvRecord } from '@prompt-valet/core';
import { binPath, claimLockedCommand, makeValetRoot, parseRecords, runBin, shQuote } from '@prompt-valet/testkit';

t.test('a claimer looking right after the retry\'s rename leaves the prompt while the run\'s record stands; the next look resumes the run', async (t) => {
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
  const early = parseRecords(fs.readFileSync(claimed, 'utf8'));
  t.same(early, [], `the claimer in the retry's move took nothing: the run's record still stood (${fs.readFileSync(`${claimed}.err`, 'utf8').trim()})`);

  const folder = path.join(r.inbox, 'widget/main');
  t.match(settled.records[0]!.settle, { state: 'pending', path: path.join(folder, 'task.prompt.md') }, 'the retry went to x.prompt.md');
  t.same(fs.readdirSync(folder), ['task.prompt.md'], 'one pending file: no x.2.prompt.md');
  t.match(await listRetryEntries(r.processed), [{ prompt_rel: 'widget/main/task.prompt.md', resume_run_id: rec.run_id, attempts: 1 }], 'one retry entry, resuming the run');
  const recordFile = path.join(r.processed, '.ledger', 'claims', `${rec.run_id}.json`);
  t.notOk(fs.existsSync(recordFile), 'pv-settle removed its claim record last');
  t.match(await readRunStatus(rec.claim!.run_root), { state: 'retry', settle: { state: 'pending' } }, 'the status says the retry');

  // The next look (pv-watcher's, when the settled pipeline has ended) resumes the run.
  const next = await runBin('pv-claim', ['--config', r.configPath, '--limit', '1'], { claimLockIn: r.processed });
  t.match(next.records, [{ run_id: rec.run_id, claim: { attempt: 2, resumed: 1, rel: 'widget/main/task.running.md' } }], `then the run is resumed (${next.stderr.trim()})`);
  t.same(fs.readdirSync(folder), ['task.running.md']);
  const record = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as ClaimRecord;
  t.match(record, { attempt: 2 }, "the new claim's record stands: recovery can resume it if its pipeline dies");
  t.match(await readRunStatus(rec.claim!.run_root), { state: 'claimed', attempt: 2, resumed: 1 });
});
