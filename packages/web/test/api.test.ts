import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { RUN_FILES, updateRunStatus } from '@prompt-valet/core';
import { makePipeline } from './fixtures/pipeline.js';
import { request, startWeb } from './fixtures/web-server.js';

interface Job { job_id: string; prompt_rel: string; state: string; run_id?: string; run_ids: string[]; pr_url?: string }
interface Run { run_id: string; state: string; repo?: string; branch?: string; pr_url?: string; reason?: string; final_rel?: string; prompt_rel: string }

const GREETING = [
  '---', 'title: Add a greeting', '---', '# Add a greeting', '', '```sh', "printf 'def greet(n):\\n    return n\\n' > greeting.py", '```', '',
].join('\n');

/** The events of a finished SSE answer: [name, data] pairs. */
function sseEvents(text: string): Array<[string, string]> {
  return text.split('\n\n').filter((b) => b.includes('event: ')).map((b) => {
    const lines = b.split('\n');
    const name = lines.find((l) => l.startsWith('event: '))!.slice(7);
    return [name, lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')];
  });
}

t.test('the API over real runs: submit, follow the job to its PR, list and filter, log, stream, abort, retry', async (t) => {
  const p = await makePipeline(t.teardown.bind(t), 'pv-web-api-');
  const { root, gh } = p;
  await fsp.mkdir(path.join(root.inbox, 'ghost', 'main'), { recursive: true }); // a repository with no origin: its run fails
  const web = await startWeb(root.configPath);
  t.teardown(() => web.stop());
  const api = async <T>(p2: string, method = 'GET', body?: unknown) => {
    const r = await request(`${web.url}${p2}`, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: r.json<T>(), text: r.text };
  };

  const targets = await api<{ targets: Array<{ id: string; owner: string; repo: string; branch: string }> }>('/api/targets');
  t.same(targets.body.targets.filter((x) => x.repo === 'widget'), [
    { id: 'widget/dev', owner: 'acme', repo: 'widget', branch: 'dev' },
    { id: 'widget/main', owner: 'acme', repo: 'widget', branch: 'main' },
  ], 'the branch folders pv-tree made');

  const ok = await api<{ jobs: Job[] }>('/api/prompts', 'POST', { target: 'widget/main', text: GREETING });
  t.equal(ok.status, 201, ok.text);
  const okJob = ok.body.jobs[0]!;
  const bad = await api<{ jobs: Job[] }>('/api/prompts', 'POST', { target: 'ghost/main', name: 'doomed', text: '# Doomed\n' });
  const badJob = bad.body.jobs[0]!;
  t.match((await api<Job>(`/api/jobs/${okJob.job_id}`)).body, { state: 'pending', run_ids: [] }, 'pending before the watcher runs');
  t.equal((await api<{ pending: unknown[] }>('/api/queue')).body.pending.length, 2);

  await p.watchOnce();

  const done = (await api<Job>(`/api/jobs/${okJob.job_id}`)).body;
  t.match(done, { state: 'done', prompt_rel: 'widget/main/add-a-greeting.prompt.md', pr_url: `https://${gh.host}/acme/widget/pull/1` }, 'the job id leads to its PR');
  t.equal(done.run_ids.length, 1);
  t.equal(gh.pullRequests.length, 1);
  t.equal(gh.pullRequests[0]!.title, 'Add a greeting', 'front matter reached the PR');
  const failed = (await api<Job>(`/api/jobs/${badJob.job_id}`)).body;
  t.match(failed, { state: 'error', run_ids: [failed.run_id] });

  // ---- listing and filters
  const all = (await api<{ runs: Run[] }>('/api/runs')).body.runs;
  t.equal(all.length, 2);
  t.same((await api<{ runs: Run[] }>('/api/runs?state=done')).body.runs.map((r) => r.run_id), [done.run_id]);
  t.same((await api<{ runs: Run[] }>('/api/runs?state=error')).body.runs.map((r) => r.run_id), [failed.run_id]);
  t.same((await api<{ runs: Run[] }>('/api/runs?repo=acme/widget')).body.runs.map((r) => r.run_id), [done.run_id]);
  t.same((await api<{ runs: Run[] }>('/api/runs?repo=widget&branch=main')).body.runs.map((r) => r.run_id), [done.run_id]);
  t.same((await api<{ runs: Run[] }>('/api/runs?branch=dev')).body.runs, []);
  t.equal((await api<{ runs: Run[] }>('/api/runs?limit=1')).body.runs.length, 1);
  t.equal((await api('/api/runs?state=bogus')).status, 400);
  t.equal((await api('/api/runs?limit=0')).status, 400);
  const q = (await api<{ pending: unknown[]; running: unknown[]; recent: Run[] }>('/api/queue')).body;
  t.same([q.pending.length, q.running.length, q.recent.length], [0, 0, 2]);
  t.ok(q.recent.every((r) => !('run_root' in r) && !('final_path' in r)), 'the API shows paths relative to the valet folders');
  const errRun = q.recent.find((r) => r.run_id === failed.run_id)!;
  t.match(errRun, { state: 'error', reason: /\S/, final_rel: 'ghost/main/doomed.error.md' });

  // ---- one run, its log, its live stream
  const detail = (await api<{ run: Run; status: { state: string; agent_branch: string }; files: string[]; last_message: string; prompt: string }>(`/api/runs/${done.run_id}`)).body;
  t.match(detail.run, { state: 'done', pr_url: done.pr_url });
  t.equal(detail.prompt, GREETING, 'the prompt as claimed');
  t.match(detail.last_message, "Ran the prompt's script");
  t.ok(detail.files.includes(RUN_FILES.log) && detail.files.includes(RUN_FILES.status));
  const log = await request(`${web.url}/api/runs/${done.run_id}/log`);
  t.match(log.headers['content-type'], 'text/plain');
  t.match(log.text, 'OpenAI Codex');
  t.match(log.text, 'greeting.py');
  const size = Number(log.headers['x-log-size']);
  const tail = await request(`${web.url}/api/runs/${done.run_id}/log?bytes=200`);
  t.ok(tail.text.length <= 200 && log.text.endsWith(tail.text), 'a tail is the end of the log, from a line start');
  const stream = await request(`${web.url}/api/runs/${done.run_id}/log/stream`);
  t.match(stream.headers['content-type'], 'text/event-stream');
  const events = sseEvents(stream.text);
  t.same(events.at(-1), ['end', '{"state":"done"}'], 'the stream of a finished run ends with its state');
  t.match(events.filter(([n]) => n === 'log').map(([, d]) => d).join('\n'), 'OpenAI Codex');
  const resumed = sseEvents((await request(`${web.url}/api/runs/${done.run_id}/log/stream`, { headers: { 'last-event-id': String(size) } })).text);
  t.same(resumed.map(([n]) => n), ['state', 'end'], 'resuming at the end sends no log again');
  t.equal((await api(`/api/runs/nope-${'x'.repeat(8)}`)).status, 404);

  // ---- abort and retry
  t.match(await api(`/api/runs/${done.run_id}/abort`, 'POST'), { status: 409, body: { error: { code: 'not_running' } } });
  t.match(await api(`/api/runs/${done.run_id}/retry`, 'POST'), { status: 409, body: { error: { code: 'not_error' } } });
  const retried = await api<{ job_id: string; prompt_rel: string }>(`/api/runs/${failed.run_id}/retry`, 'POST');
  t.equal(retried.status, 201, retried.text);
  t.equal(retried.body.prompt_rel, 'ghost/main/doomed.prompt.md');
  t.equal(await fsp.readFile(path.join(root.inbox, retried.body.prompt_rel), 'utf8'), '# Doomed\n', 'the prompt is back in the inbox, unchanged');
  await t.rejects(fsp.lstat(path.join(root.finished, 'ghost', 'main', 'doomed.error.md')), 'and no longer in finished/');
  t.match((await api<Job>(`/api/jobs/${retried.body.job_id}`)).body, { state: 'pending', run_ids: [failed.run_id] }, 'the retry job starts at the failed run');
  t.match((await api<Job>(`/api/jobs/${badJob.job_id}`)).body, { state: 'pending' }, 'the original job is pending again too');
  t.match(await api(`/api/runs/${failed.run_id}/retry`, 'POST'), { status: 409, body: { error: { code: 'retry_refused' } } }, 'a second retry');

  // A run that is still going (as pv-claim leaves it): abort writes its ABORT file.
  const live = path.join(root.processed, '20990101-000000-000-livetest');
  await updateRunStatus(live, { state: 'running', prompt_rel: 'widget/main/live.prompt.md', step: 'run-codex' });
  t.equal((await api(`/api/runs/${path.basename(live)}/abort`, 'POST')).status, 202);
  t.match(await fsp.readFile(path.join(live, RUN_FILES.abort), 'utf8'), 'abort requested through pv-web');
  t.equal((await api(`/api/runs/${path.basename(live)}/abort`, 'POST')).status, 202, 'asking twice is harmless');
  t.equal((await api<{ abort_requested: boolean }>(`/api/runs/${path.basename(live)}`)).body.abort_requested, true);
  await web.stop();
});
