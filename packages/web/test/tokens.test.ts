import t from 'tap';
import * as path from 'node:path';
import { updateRunStatus } from '@prompt-valet/core';
import { makeValetRoot } from '@prompt-valet/testkit';
import { request, startWeb } from './fixtures/web-server.js';

interface Day { day: string; runs: number; tokens: number }

t.test('tokens per run in the queue and the run, tokens per day from /api/tokens', async (t) => {
  const root = await makeValetRoot({}, 'pv-web-tokens-');
  t.teardown(() => root.cleanup());
  const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  const settled = `${today}-000001-000-aaaaaaaa`;
  const going = `${today}-000002-000-bbbbbbbb`;
  await updateRunStatus(path.join(root.processed, settled), { state: 'error', prompt_rel: 'widget/main/x.prompt.md', usage: { input_tokens: 1000, output_tokens: 234, total_tokens: 1234 } });
  await updateRunStatus(path.join(root.processed, going), { state: 'running', prompt_rel: 'widget/main/y.prompt.md', usage: { total_tokens: 10 } });
  const web = await startWeb(root.configPath);
  t.teardown(() => web.stop());
  const get = async <T>(p: string) => {
    const r = await request(`${web.url}${p}`, { method: 'GET' });
    return { status: r.status, body: r.json<T>() };
  };

  const q = await get<{ recent: Array<{ run_id: string; tokens?: number }>; running: Array<{ tokens?: number }> }>('/api/queue');
  t.equal(q.body.recent.find((r) => r.run_id === settled)?.tokens, 1234, 'a settled run shows its tokens');
  t.equal(q.body.running[0]?.tokens, 10, 'a running one too');

  const first = await get<{ days: Day[]; truncated: boolean }>('/api/tokens?days=2');
  t.equal(first.status, 200);
  t.equal(first.body.days.length, 2);
  t.match(first.body.days[0], { runs: 2, tokens: 1244 });
  t.same(first.body.days[1]!.runs, 0);
  // The running run's usage grows; the settled run's count is cached, the running one read again.
  await updateRunStatus(path.join(root.processed, going), { usage: { total_tokens: 500 } });
  t.match((await get<{ days: Day[] }>('/api/tokens?days=2')).body.days[0], { tokens: 1734 });

  for (const bad of ['0', '91', 'x', '1.5']) {
    const r = await get<{ error: { code: string; message: string } }>(`/api/tokens?days=${bad}`);
    t.equal(r.status, 400, `days=${bad} refused`);
    t.match(r.body.error, { code: 'bad_days', message: /from 1 to 90/ });
  }
});
