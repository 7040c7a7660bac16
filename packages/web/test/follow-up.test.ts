import t from 'tap';
import { chromium, type Browser } from 'playwright-core';
import { makePipeline } from './fixtures/pipeline.js';
import { request, startWeb } from './fixtures/web-server.js';

/**
 * pv-web's follow-ups over real runs (the real server, pv-watcher --once, the
 * real codex and gh against the fakes): POST /api/runs/:id/follow-up files a
 * prompt with `follow_up: <run id>` into the run's base branch folder; the
 * run's detail lists its follow-ups; the page's "Follow up" form does the same
 * in Chromium.
 */
interface Job { job_id: string; prompt_rel: string; state: string; run_id?: string }
interface Run { run_id: string; state: string; outcome?: string; pr_url?: string }
interface Detail { run: Run; status: { follow_up_of?: string; agent_branch?: string }; follow_ups: Run[] }

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const script = (line: string) => `# Step\n\n\`\`\`sh\n${line}\n\`\`\`\n`;

t.test('a run\'s follow-ups: the API form, the list under the run, the page form', async (t) => {
  const p = await makePipeline(t.teardown.bind(t), 'pv-web-follow-');
  const { root, gh } = p;
  const web = await startWeb(root.configPath);
  t.teardown(() => web.stop());
  const api = async <T>(p2: string, method = 'GET', body?: unknown) => {
    const r = await request(`${web.url}${p2}`, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: r.json<T>(), text: r.text };
  };

  const first = (await api<{ jobs: Job[] }>('/api/prompts', 'POST', { target: 'widget/main', text: `---\ntitle: Add a\n---\n${script('echo one > a.txt')}` })).body.jobs[0]!;
  await p.watchOnce();
  const firstRun = (await api<Job>(`/api/jobs/${first.job_id}`)).body.run_id!;
  t.same((await api<Detail>(`/api/runs/${firstRun}`)).body.follow_ups, [], 'no follow-ups yet');

  // Refused: a prompt that names another run, a run that does not exist.
  t.match(await api(`/api/runs/${firstRun}/follow-up`, 'POST', { text: `---\nfollow_up: 20200101-000000-000-aaaaaaaa\n---\n# x\n` }),
    { status: 400, body: { error: { code: 'follow_up_conflict', message: /not this run/ } } });
  t.match(await api('/api/runs/20200101-000000-000-aaaaaaaa/follow-up', 'POST', { text: '# x\n' }), { status: 404 });

  const posted = await api<{ jobs: Job[] }>(`/api/runs/${firstRun}/follow-up`, 'POST', { text: script('echo two > b.txt') });
  t.equal(posted.status, 201, posted.text);
  const job = posted.body.jobs[0]!;
  t.match(job.prompt_rel, /^widget\/main\/step\.prompt\.md$/, 'filed into the run\'s base branch folder');
  await p.watchOnce();
  const second = (await api<Job>(`/api/jobs/${job.job_id}`)).body;
  t.match(second, { state: 'done' });
  const detail = (await api<Detail>(`/api/runs/${firstRun}`)).body;
  t.match(detail.follow_ups, [{ run_id: second.run_id, state: 'done', outcome: 'pr_commented' }], 'the follow-up is listed under the run');
  t.match((await api<Detail>(`/api/runs/${second.run_id!}`)).body.status, { follow_up_of: firstRun, agent_branch: detail.status.agent_branch });
  t.equal(gh.pullRequests.length, 1, 'one PR');
  t.equal(gh.pullRequests[0]!.comments.length, 1, 'one comment');

  // A run that did not push a branch cannot be followed up.
  await api('/api/prompts', 'POST', { target: 'widget/main', text: '# Look around\n\nNothing to change.\n' });
  await p.watchOnce();
  const idle = (await api<{ runs: Run[] }>('/api/runs?limit=1')).body.runs[0]!;
  t.match(idle, { state: 'done', outcome: 'no_changes' });
  t.match(await api(`/api/runs/${idle.run_id}/follow-up`, 'POST', { text: '# x\n' }), { status: 409, body: { error: { code: 'not_followable' } } });

  // The page: the form on the newest run of the branch, and the list under the first.
  const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000 });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(120_000);
  await page.goto(`${web.url}/#/run/${second.run_id!}`);
  t.equal(await page.locator('#follow-up-of').textContent(), firstRun, 'the run names the run it follows');
  await page.fill('#follow-up-text', script('echo three > c.txt'));
  await page.click('#follow-up-submit');
  await page.locator('#job, #follow-up-msg:not([hidden])').first().waitFor();
  t.match(page.url(), /#\/job\//, 'the page follows the new job (no error shown)');
  await p.watchOnce();
  await page.locator('#run-state [data-state="done"]').waitFor();
  t.equal(gh.pullRequests[0]!.comments.length, 2, 'the page\'s follow-up commented on the same PR');
  await page.goto(`${web.url}/#/run/${firstRun}`);
  await page.locator('#follow-ups li').nth(1).waitFor();
  t.equal(await page.locator('#follow-ups li').count(), 2, 'both follow-ups under the first run');
  t.equal(gh.pullRequests.length, 1);
});
