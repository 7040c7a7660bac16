import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { claimIdentity, removeClaimRecordOf, writeClaimRecord, type ClaimRecord } from '../src/prompt-ledger.js';

function claimOf(lock: string, claimedAt: string, attempt: number): ClaimRecord {
  return {
    v: 1,
    run_id: '20261130-120000-000-abcdefgh',
    rel: 'widget/main/x.running.md',
    prompt_rel: 'widget/main/x.prompt.md',
    ino: 42,
    liveness: { kind: 'local', lock },
    attempt,
    claimed_at: claimedAt,
    run_root: '/srv/prompt-valet/processed/20261130-120000-000-abcdefgh',
  };
}

t.test('removeClaimRecordOf removes a claim record only while it is that claim\'s', async (t) => {
  const processed = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-claim-record-'));
  t.teardown(() => fs.rmSync(processed, { recursive: true, force: true }));
  const handedOn = claimOf('lock-a', '2026-11-30T12:00:00.000Z', 1);
  const resumed = claimOf('lock-b', '2026-11-30T12:00:05.000Z', 2);
  const claims = path.dirname(await writeClaimRecord(processed, handedOn));
  const file = path.join(claims, `${handedOn.run_id}.json`);

  // The run was resumed at once: the new claim's record has the name now.
  await writeClaimRecord(processed, resumed);
  t.equal(await removeClaimRecordOf(file, claimIdentity(handedOn)), false, 'not the old claim\'s any more');
  t.same(JSON.parse(fs.readFileSync(file, 'utf8')), resumed, 'the resumed claim\'s record stands');
  t.same(fs.readdirSync(claims), [`${handedOn.run_id}.json`], 'nothing left aside');

  t.equal(await removeClaimRecordOf(file, claimIdentity(resumed)), true, 'its own claim removes it');
  t.same(fs.readdirSync(claims), []);
  t.equal(await removeClaimRecordOf(file, claimIdentity(resumed)), false, 'already gone');
});
