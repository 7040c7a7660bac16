import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, waitFor } from '@prompt-valet/testkit';
import { makePipeline } from './fixtures/pipeline.js';
import { request, startWeb } from './fixtures/web-server.js';

/**
 * The page in the real Chromium from Debian, driven by playwright-core (no
 * browser download), against pv-web over a real pipeline: a running
 * pv-watcher, the real codex against the scripted fake model, the real gh
 * against the fake GitHub. Screenshots go to .tap/output/pv-web/; with
 * UPDATE_SCREENSHOTS=1 the README's docs/screenshots/ are written too.
 */
const OUT = path.join(REPO_ROOT, '.tap', 'output', 'pv-web');
const DOCS = path.join(REPO_ROOT, 'docs', 'screenshots');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const GREETING = ['---', 'title: Add a greeting', '---', '# Add a greeting', '', 'Add `greeting.py`.', '', '```sh', "printf 'def greet(n):\\n    return n\\n' > greeting.py", '```', ''].join('\n');
// Runs until aborted: the fake model makes codex wait for the command (long yield time).
const SLOW = ['# Rebuild the search index', '', 'Takes a while.', '', '```sh', 'echo indexing; sleep 90; echo finished', '```', ''].join('\n');

async function shot(page: Page, name: string, docs?: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, name), fullPage: true });
  if (docs && process.env.UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: path.join(DOCS, docs), fullPage: false });
}

async function noSideScroll(page: Page): Promise<boolean> {
  // Evaluated in the page, whose DOM types this Node program does not load.
  return page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');
}

t.test('the dashboard in Chromium: submit to PR, live log, abort, retry, phone width', async (t) => {
  await fsp.mkdir(OUT, { recursive: true });
  await fsp.mkdir(DOCS, { recursive: true });
  const p = await makePipeline(t.teardown.bind(t), 'pv-web-browser-');
  const { root, gh } = p;
  await fsp.mkdir(path.join(root.inbox, 'ghost', 'main'), { recursive: true }); // no origin: its runs fail fast
  const web = await startWeb(root.configPath);
  t.teardown(() => web.stop());
  const watcher = p.startWatcher();
  const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000 });
  t.teardown(() => browser.close());
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await desktop.newPage();
  page.setDefaultTimeout(120_000);

  await t.test('submit from the page and watch it reach done with a PR link', async (t) => {
    await page.goto(`${web.url}/#/submit`);
    await page.selectOption('#target', 'widget/main');
    await page.fill('#text', GREETING);
    await shot(page, 'submit-form.png');
    await page.click('#submit');
    await page.waitForURL(/#\/job\//);
    await page.locator('#run-state [data-state="done"]').waitFor();
    const pr = page.locator('a.pr').first();
    await pr.waitFor();
    t.equal(await pr.getAttribute('href'), `https://${gh.host}/acme/widget/pull/1`, 'the PR link of the run the job became');
    t.equal(gh.pullRequests[0]?.title, 'Add a greeting');
    // The PR link comes with the page's reload once the run settled; the reloaded page streams its log anew.
    await page.locator('#log', { hasText: 'OpenAI Codex' }).waitFor({ timeout: 30_000 }).catch(() => undefined);
    t.match(await page.locator('#log').textContent(), 'OpenAI Codex', 'the log was shown');
    t.match(await page.locator('#last-message').textContent(), "Ran the prompt's script");
    await shot(page, 'job-done.png');
  });

  await t.test('the live log shows lines while a run is going; abort from the page with a confirmation', async (t) => {
    await page.goto(`${web.url}/#/submit`);
    await page.selectOption('#target', 'widget/dev');
    await page.fill('#text', SLOW);
    await page.click('#submit');
    await page.waitForURL(/#\/job\//);
    await page.locator('#run-state [data-state="running"]').waitFor();
    await page.locator('#log', { hasText: 'Rebuild the search index' }).waitFor();
    t.equal(await page.locator('#log-state').textContent(), 'live');
    t.match(await page.locator('#log').textContent(), 'OpenAI Codex', 'agent.log lines arrive while the run is running');
    await shot(page, 'run-live.png');
    let question = '';
    page.once('dialog', (d) => {
      question = d.message();
      void d.accept();
    });
    await page.click('#abort');
    await page.locator('#run-msg', { hasText: 'Abort requested' }).waitFor();
    t.match(question, /^Abort run /, 'the page asked first');
    await page.locator('#run-state [data-state="error"]').waitFor();
    // The stream's final `state` and its `end` are two events: the page may have read only the first.
    await page.locator('#log-state', { hasText: 'ended' }).waitFor({ timeout: 10_000 }).catch(() => undefined);
    t.equal(await page.locator('#log-state').textContent(), 'ended', 'the stream ended with the run');
    await page.locator('dd', { hasText: 'aborted' }).first().waitFor();
    const runId = await page.locator('#run').getAttribute('data-run');
    t.ok(await fsp.lstat(path.join(root.processed, runId!, 'ABORT')), 'the abort is the run\'s ABORT file');
    await shot(page, 'run-aborted.png');
  });

  await t.test('an errored run is retried from the page and followed again', async (t) => {
    const sent = await request(`${web.url}/api/prompts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'ghost/main', name: 'lost-repo', text: '# Update the docs\n' }) });
    const jobId = sent.json<{ jobs: Array<{ job_id: string }> }>().jobs[0]!.job_id;
    const first = await waitFor('the ghost run to fail', async () => {
      const j = (await request(`${web.url}/api/jobs/${jobId}`)).json<{ state: string; run_id?: string }>();
      return j.state === 'error' && j.run_id;
    }, 120_000, 250);
    await page.goto(`${web.url}/#/run/${first}`);
    // goto resolves at the hash change; until the page has rendered this run, the aborted run's page
    // (with a Retry of its own) is still shown: click the Retry of this run.
    await page.click(`#run[data-run="${first}"] #retry`);
    await page.waitForURL(/#\/job\//);
    await page.locator('#job-banner', { hasText: '(attempt 2)' }).waitFor();
    await page.locator('#run-state [data-state="error"]').waitFor();
    t.not(await page.locator('#run').getAttribute('data-run'), first, 'the page follows the new run');
  });

  await t.test('the dashboard lists the runs with state, target, PR link and reason', async (t) => {
    await page.goto(`${web.url}/#/`);
    await waitFor('four runs on the dashboard', async () => (await page.locator('#recent [data-run]').count()) === 4, 60_000, 250);
    t.equal(await page.locator('#recent [data-state="done"]').count(), 1);
    t.equal(await page.locator('#recent [data-state="error"]').count(), 3);
    t.match(await page.locator('#recent a.pr').getAttribute('href'), '/acme/widget/pull/1');
    t.match(await page.locator('#recent').textContent(), 'acme/widget @ main');
    t.match(await page.locator('#recent .sub').first().textContent(), /\S/, 'an error shows its reason');
    await page.selectOption('#filter-state', 'done');
    await waitFor('the filter', async () => (await page.locator('#recent [data-run]').count()) === 1, 30_000, 250);
    await page.selectOption('#filter-state', '');
    await waitFor('all again', async () => (await page.locator('#recent [data-run]').count()) === 4, 30_000, 250);
    t.ok(await noSideScroll(page));
    await shot(page, 'dashboard.png', 'dashboard.png');
  });

  await t.test('at phone width: no sideways scrolling; submit form and run page fit', async (t) => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const mobile = await phone.newPage();
    mobile.setDefaultTimeout(60_000);
    await mobile.goto(`${web.url}/#/`);
    await waitFor('runs on the phone', async () => (await mobile.locator('#recent [data-run]').count()) === 4, 60_000, 250);
    t.ok(await noSideScroll(mobile), 'the dashboard fits 390 px');
    await shot(mobile, 'dashboard-phone.png', 'dashboard-phone.png');
    await mobile.goto(`${web.url}/#/submit`);
    await mobile.locator('#target option[value="widget/main"]').waitFor({ state: 'attached' });
    t.ok(await noSideScroll(mobile), 'the submit form fits');
    const box = await mobile.locator('#submit').boundingBox();
    t.ok(box && box.x >= 0 && box.x + box.width <= 390, 'the submit button is on screen');
    await shot(mobile, 'submit-phone.png');
    await mobile.locator('#recent').count();
    await mobile.goto(`${web.url}/#/`);
    await mobile.locator('#recent [data-state="done"]').first().click();
    await mobile.locator('#run-state [data-state="done"]').waitFor();
    t.ok(await noSideScroll(mobile), 'the run page fits');
    await shot(mobile, 'run-phone.png');
    await phone.close();
  });

  await watcher.stop();
  await web.stop();
});
