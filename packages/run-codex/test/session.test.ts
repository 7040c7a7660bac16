import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger, markStepDone, type FollowUpTarget, type TargetSection } from '@prompt-valet/core';
import { findRunSession, prepareContinuation, recordSession, sessionIdOfEvent } from '../src/session.js';

const PREVIOUS = '20261130-070000-000-aaaaaaaa';
const SESSION = '01a22b35-e6b4-7933-bc03-c595fdc1dad0';
const BRANCH = `codex/add-a-${PREVIOUS}`;

/** A codex session file, where codex writes them, in a run's CODEX_HOME; its path relative to it. */
function plantSession(home: string, content: string): string {
  const rel = `sessions/2026/11/30/rollout-2026-11-30T07-00-00-${SESSION}.jsonl`;
  fs.mkdirSync(path.dirname(path.join(home, rel)), { recursive: true });
  fs.writeFileSync(path.join(home, rel), content);
  return rel;
}

function scratch(t: Test) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-session-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const processed = path.join(dir, 'processed');
  const previousRoot = path.join(processed, PREVIOUS);
  const previousHome = path.join(previousRoot, 'jail', 'codex-home');
  const newHome = path.join(dir, 'new-home');
  fs.mkdirSync(newHome, { recursive: true });
  const logged = new PassThrough();
  let logText = '';
  logged.on('data', (c: Buffer) => (logText += c.toString()));
  const log = createLogger('pv-run-codex', { stream: logged, env: {} });
  const followUp: FollowUpTarget = { via: 'run_id', of_run: PREVIOUS, root_run: PREVIOUS, previous_run: PREVIOUS, pr_url: 'https://gh.example/acme/widget/pull/1' };
  const target = { agent_branch: BRANCH } as TargetSection;
  return { processed, previousRoot, previousHome, newHome, log, logText: () => logText, followUp, target };
}

t.test('a run\'s session: announced by --json, else the newest conversation in its CODEX_HOME', async (t) => {
  const s = scratch(t);
  t.equal(sessionIdOfEvent(`{"type":"thread.started","thread_id":"${SESSION}"}`), SESSION);
  t.equal(sessionIdOfEvent('{"type":"thread.started","thread_id":"--last"}'), undefined, 'only a UUID is ever passed to codex');
  t.equal(findRunSession(s.previousHome, undefined), undefined, 'no conversation, no session');
  const rel = plantSession(s.previousHome, '{"type":"session_meta"}\n');
  t.same(findRunSession(s.previousHome, undefined), { session_id: SESSION, file: rel });
  t.same(findRunSession(s.previousHome, SESSION), { session_id: SESSION, file: rel });
});

t.test('a follow-up copies the earlier session into its own CODEX_HOME and resumes it; the earlier run folder is only read', async (t) => {
  const s = scratch(t);
  await markStepDone(s.previousRoot, 'resolve', s.target);
  const rel = plantSession(s.previousHome, 'the earlier conversation\n');
  await recordSession(s.previousRoot, { session_id: SESSION, file: rel });
  const before = fs.statSync(path.join(s.previousHome, rel));

  const c = await prepareContinuation({ processed: s.processed }, s.followUp, BRANCH, s.newHome, s.log);
  t.same(c, { kind: 'resumed', sessionId: SESSION, from: PREVIOUS });
  t.equal(fs.readFileSync(path.join(s.newHome, rel), 'utf8'), 'the earlier conversation\n');
  fs.appendFileSync(path.join(s.newHome, rel), 'new turns\n');
  t.equal(fs.readFileSync(path.join(s.previousHome, rel), 'utf8'), 'the earlier conversation\n', 'a copy, not a link: the earlier session is unchanged');
  t.equal(fs.statSync(path.join(s.previousHome, rel)).mtimeMs, before.mtimeMs);
});

t.test('no session known: a fresh start with the earlier title and summary quoted, said in the log', async (t) => {
  const s = scratch(t);
  await markStepDone(s.previousRoot, 'resolve', s.target);
  fs.writeFileSync(path.join(s.previousRoot, 'last-message.md'), 'Added a.txt with "one".\n');
  fs.writeFileSync(path.join(s.previousRoot, 'publish.json'), JSON.stringify({ outcome: 'pr_opened', title: 'Add a' }));
  const c = await prepareContinuation({ processed: s.processed }, s.followUp, BRANCH, s.newHome, s.log);
  t.equal(c.kind, 'fresh');
  if (c.kind !== 'fresh') return;
  t.match(c.why, `run ${PREVIOUS} recorded no codex session`);
  t.match(c.preamble, /> Add a/);
  t.match(c.preamble, /> Added a\.txt with "one"\./);
  t.match(c.preamble, 'https://gh.example/acme/widget/pull/1');
  t.match(s.logText(), /recorded no codex session.*starts a new codex session/);

  // A session recorded, but its file gone: fresh as well.
  await recordSession(s.previousRoot, { session_id: SESSION, file: 'sessions/x.jsonl' });
  const gone = await prepareContinuation({ processed: s.processed }, s.followUp, BRANCH, s.newHome, s.log);
  t.match(gone, { kind: 'fresh', why: /is no longer in its CODEX_HOME/ });
});

t.test('a record naming a run of another branch lends no conversation', async (t) => {
  const s = scratch(t);
  await markStepDone(s.previousRoot, 'resolve', { agent_branch: 'codex/other-20261130-070000-000-bbbbbbbb' } as TargetSection);
  await t.rejects(prepareContinuation({ processed: s.processed }, s.followUp, BRANCH, s.newHome, s.log), { code: 'foreign_path' });
  t.same(fs.readdirSync(s.newHome), [], 'nothing copied');
});

t.test('a link an earlier try\'s agent left in this run\'s CODEX_HOME is not followed when the session is copied in', async (t) => {
  const s = scratch(t);
  await markStepDone(s.previousRoot, 'resolve', s.target);
  const rel = plantSession(s.previousHome, 'the earlier conversation\n');
  await recordSession(s.previousRoot, { session_id: SESSION, file: rel });
  const elsewhere = path.join(path.dirname(s.newHome), 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.symlinkSync(elsewhere, path.join(s.newHome, 'sessions'));
  await t.rejects(prepareContinuation({ processed: s.processed }, s.followUp, BRANCH, s.newHome, s.log), { code: 'symlink' });
  t.same(fs.readdirSync(elsewhere), [], 'nothing written through the link');
});
