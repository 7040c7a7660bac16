import t from 'tap';
import { INCOMPLETE_LABEL, type PvRecord, type RecordError } from '@prompt-valet/core';
import { originBranches } from '@prompt-valet/testkit';
import { setup } from './fixtures/setup.js';

/**
 * pv-publish and a stopped agent's record (pv-run-codex's error with
 * `incomplete`): the work goes through the same publish as finished work,
 * and keeping it never turns the agent's error into another one.
 */
const stopped = (rec: PvRecord, reason: 'timeout' | 'aborted', code = reason === 'timeout' ? 'agent_timeout' : 'aborted'): PvRecord => ({
  ...rec,
  agent: { ...rec.agent!, timed_out: reason === 'timeout', aborted: reason === 'aborted' },
  error: { step: 'run-codex', code, message: 'the agent was stopped', retryable: false, incomplete: { reason } },
});

t.test('a stopped agent\'s work: pushed, one draft PR with the label and the operator\'s labels, the error kept and linking it', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = stopped(await cloned(bare, { 'half.txt': 'half done\n' }), 'timeout');
  const r = await publish([rec]);
  const out = r.records[0]!;
  t.equal(gh.pullRequests.length, 1, r.stderr);
  const pr = gh.pullRequests[0]!;
  t.equal(pr.draft, true);
  t.same(pr.labels.sort(), ['codex', INCOMPLETE_LABEL].sort());
  t.match(out.error, {
    step: 'run-codex', code: 'agent_timeout', retryable: false,
    message: `the agent was stopped; its work so far is in draft pull request ${pr.url}`,
    incomplete: { reason: 'timeout', branch: rec.target!.agent_branch, commit: out.publish!.commit, pr_url: pr.url },
  });
  t.match(out.publish, { outcome: 'pr_opened', incomplete: true });
  t.equal((await originBranches(bare)).get(rec.target!.agent_branch), out.publish!.commit);

  // Replayed (a resumed run): the PR is found, not made again.
  const again = await publish([rec]);
  t.equal(gh.pullRequests.length, 1, 'still one PR');
  t.match(again.records[0]!.error?.incomplete, { pr_url: pr.url });
});

t.test('a secret in the stopped agent\'s diff: nothing pushed, the agent\'s error kept and not retryable', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  const rec = stopped(await cloned(bare, { 'leak.txt': 'token = ghp_abcdefghijklmnopqrstuvwxyz0123456789\n' }), 'aborted');
  const r = await publish([rec]);
  const err = r.records[0]!.error as RecordError;
  t.match(err, { step: 'run-codex', code: 'aborted', retryable: false, incomplete: { reason: 'aborted', not_kept: /^secret_detected: / } });
  t.match(err.message, /its work was not kept: secret_detected/);
  t.notMatch(JSON.stringify(r.records) + r.stderr, 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'the secret is not printed');
  t.equal(gh.pullRequests.length, 0);
  t.equal((await originBranches(bare)).get(rec.target!.agent_branch), undefined, 'nothing pushed');
});

t.test('GitHub failing while the work is kept: a retryable gh_failed caused by the stop; the replay opens the draft', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t);
  gh.failNext('PullRequestCreate', 502);
  const rec = stopped(await cloned(bare, { 'half.txt': 'x\n' }), 'timeout');
  const out = (await publish([rec])).records[0]!;
  t.match(out.error, { step: 'publish', code: 'gh_failed', retryable: true, cause: { code: 'agent_timeout' }, incomplete: { reason: 'timeout', not_kept: /^gh_failed: / } });
  t.equal(gh.pullRequests.length, 0);
  // What the resumed run feeds pv-publish: pv-run-codex's recorded stop again.
  const retried = (await publish([rec])).records[0]!;
  t.equal(gh.pullRequests.length, 1, 'the draft is opened on the retry');
  t.match(retried.error, { code: 'agent_timeout', retryable: false, incomplete: { pr_url: gh.pullRequests[0]!.url } });
});

t.test('keep_incomplete_work false, and failures that are no stop: passed through, nothing pushed', async (t) => {
  const { bare, gh, cloned, publish } = await setup(t, { keep_incomplete_work: false });
  const kept = stopped(await cloned(bare, { 'a.txt': 'x\n' }), 'timeout');
  const shutdown: PvRecord = { ...(await cloned(bare, { 'b.txt': 'x\n' })), error: { step: 'run-codex', code: 'aborted_shutdown', message: 'stopped', retryable: true } };
  const forged: PvRecord = { ...(await cloned(bare, { 'c.txt': 'x\n' })), error: { step: 'clone', code: 'git_failed', message: 'x', retryable: false, incomplete: { reason: 'timeout' } } };
  const r = await publish([kept, shutdown, forged]);
  t.match(r.records[0]!.error, { code: 'agent_timeout', incomplete: { not_kept: /keep_incomplete_work is false/ } });
  t.same(r.records[1], shutdown, 'a shutdown passes untouched (the run resumes)');
  t.same(r.records[2], forged, 'only pv-run-codex\'s stop counts');
  t.equal(gh.pullRequests.length, 0);
  t.same([...(await originBranches(bare)).keys()].filter((b) => b.startsWith('codex/')), [], 'no agent branch pushed');
});
