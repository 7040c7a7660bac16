import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, updateRunStatus } from '@prompt-valet/core';
import { makeValetRoot, runBin } from '@prompt-valet/testkit';

t.test('pending, running with its last log line, recent with PR link and reason', async (t) => {
  const root = await makeValetRoot();
  t.teardown(() => root.cleanup());
  await root.dropPrompt('widget/main/add-tests.prompt.md', '# Add tests\n');
  fs.writeFileSync(path.join(root.inbox, 'widget/main/fix-bug.running.md'), 'x');

  const running = path.join(root.processed, '20261126-101010-000-aaaaaaaa');
  await updateRunStatus(running, { state: 'claimed', prompt_rel: 'widget/main/fix-bug.prompt.md', attempt: 1 });
  await updateRunStatus(running, { state: 'running', owner: 'acme', repo: 'widget', branch: 'main' });
  fs.writeFileSync(path.join(running, RUN_FILES.log), 'starting\nediting src/login.ts\n');

  const done = path.join(root.processed, '20261126-090000-000-bbbbbbbb');
  await updateRunStatus(done, { state: 'done', prompt_rel: 'widget/main/old.prompt.md', owner: 'acme', repo: 'widget', branch: 'main', pr_url: 'https://github.com/acme/widget/pull/7', outcome: 'pr_opened' });
  const failed = path.join(root.processed, '20261126-080000-000-cccccccc');
  await updateRunStatus(failed, {
    state: 'error',
    prompt_rel: 'gadget/dev/x.prompt.md',
    error: { step: 'clone', code: 'base_branch_missing', message: 'branch dev does not exist upstream', retryable: false },
  });

  const json = await runBin('pv-status', ['--json', '--config', root.configPath]);
  t.equal(json.code, 0, json.stderr);
  const q = JSON.parse(json.stdout);
  t.same(q.pending.map((p: { rel: string }) => p.rel), ['widget/main/add-tests.prompt.md']);
  t.equal(q.running.length, 1);
  t.match(q.running[0], { run_id: '20261126-101010-000-aaaaaaaa', state: 'running', repo: 'widget', last_log_line: 'editing src/login.ts' });
  t.same(q.recent.map((r: { run_id: string }) => r.run_id), ['20261126-090000-000-bbbbbbbb', '20261126-080000-000-cccccccc'], 'newest first');
  t.equal(q.recent[0].pr_url, 'https://github.com/acme/widget/pull/7');
  t.equal(q.recent[1].reason, 'base_branch_missing: branch dev does not exist upstream');

  const human = await runBin('pv-status', ['--config', root.configPath]);
  t.equal(human.code, 0);
  t.match(human.stdout, /Pending \(1\)\n  widget\/main\/add-tests\.prompt\.md/);
  t.match(human.stdout, /Running \(1\)\n  20261126-101010-000-aaaaaaaa  running .* acme\/widget@main/);
  t.match(human.stdout, /editing src\/login\.ts/);
  t.match(human.stdout, /https:\/\/github\.com\/acme\/widget\/pull\/7/);
  t.match(human.stdout, /base_branch_missing/);
});

t.test('an empty valet shows empty sections; a bad config exits 78', async (t) => {
  const root = await makeValetRoot();
  t.teardown(() => root.cleanup());
  const r = await runBin('pv-status', ['--config', root.configPath]);
  t.equal(r.code, 0);
  t.match(r.stdout, /Pending \(0\)[\s\S]*Running \(0\)[\s\S]*Recent \(0\)/);
  fs.writeFileSync(root.configPath, 'inbox_mode: sideways\n');
  const bad = await runBin('pv-status', ['--config', root.configPath]);
  t.equal(bad.code, 78);
  t.match(bad.stderr, /inbox_mode: got string "sideways"/);
});

t.test('names with escape sequences and line breaks are shown escaped, never obeyed', async (t) => {
  const root = await makeValetRoot();
  t.teardown(() => root.cleanup());
  // A prompt whose name retitles the terminal and clears the screen; one with a newline.
  const evil = '\x1b]0;pwned\x07\x1b[2J\x1b[Hevil.prompt.md';
  await root.dropPrompt(`widget/main/${evil}`, 'x\n');
  await root.dropPrompt('widget/main/two\nlines.prompt.md', 'x\n');
  const running = path.join(root.processed, '20261126-101010-000-aaaaaaaa');
  await updateRunStatus(running, { state: 'running', prompt_rel: 'widget/main/r.prompt.md', owner: 'acme', repo: 'widget', branch: 'main' });
  fs.writeFileSync(path.join(running, RUN_FILES.log), 'agent says \x1b[31mred\x1b[0m\n');

  const human = await runBin('pv-status', ['--config', root.configPath]);
  t.equal(human.code, 0, human.stderr);
  t.notMatch(human.stdout, /[\x00-\x09\x0b-\x1f\x7f]/, 'no control character but the line ends reaches the terminal');
  t.match(human.stdout, '  widget/main/\\x1b]0;pwned\\x07\\x1b[2J\\x1b[Hevil.prompt.md  waiting');
  t.match(human.stdout, '  widget/main/two\\nlines.prompt.md  waiting', 'the newline is shown, the entry stays on one line');
  t.match(human.stdout, 'agent says \\x1b[31mred\\x1b[0m');
  const json = await runBin('pv-status', ['--json', '--config', root.configPath]);
  t.ok(JSON.parse(json.stdout).pending.some((p: { rel: string }) => p.rel === `widget/main/${evil}`), '--json keeps the exact name (JSON escapes it)');
});

t.test('tokens per run and per day, from the runs of the days asked for', async (t) => {
  const root = await makeValetRoot();
  t.teardown(() => root.cleanup());
  const now = new Date();
  const stamp = (daysAgo: number, suffix: string) => {
    const d = new Date(now.getTime() - daysAgo * 86_400_000).toISOString();
    return `${d.slice(0, 10).replaceAll('-', '')}-${d.slice(11, 19).replaceAll(':', '')}-000-${suffix}`;
  };
  const runs: [string, number | undefined][] = [
    [stamp(0, 'aaaaaaaa'), 1500], [stamp(0, 'bbbbbbbb'), 250], [stamp(0, 'cccccccc'), undefined], [stamp(1, 'dddddddd'), 40], [stamp(30, 'eeeeeeee'), 999999],
  ];
  for (const [id, tokens] of runs) {
    await updateRunStatus(path.join(root.processed, id), {
      state: 'done', prompt_rel: 'widget/main/x.prompt.md', ...(tokens === undefined ? {} : { usage: { input_tokens: tokens - 10, output_tokens: 10, total_tokens: tokens } }),
    });
  }
  const json = await runBin('pv-status', ['--json', '--days', '3', '--config', root.configPath]);
  t.equal(json.code, 0, json.stderr);
  const q = JSON.parse(json.stdout);
  t.same(q.tokens_per_day.days.map((d: { runs: number; tokens: number }) => [d.runs, d.tokens]), [[3, 1750], [1, 40], [0, 0]], 'today, yesterday, the day before; the run 30 days ago is outside');
  t.equal(q.tokens_per_day.days[0].day, now.toISOString().slice(0, 10));
  t.equal(q.tokens_per_day.truncated, false);
  t.equal(q.recent.find((r: { run_id: string }) => r.run_id === runs[0]![0]).tokens, 1500, 'tokens per run');

  const human = await runBin('pv-status', ['--days', '2', '--config', root.configPath]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /1,500 tokens/);
  t.match(human.stdout, new RegExp(`Tokens per day\\n  ${now.toISOString().slice(0, 10)}  +1,750 tokens  3 run\\(s\\)`));
});

t.test('dispatch: nats — a running job shows the worker its live log comes from, a finished one the worker that ran it', async (t) => {
  const root = await makeValetRoot();
  t.teardown(() => root.cleanup());
  const running = path.join(root.processed, '20261126-101010-000-dddddddd');
  await updateRunStatus(running, { state: 'claimed', prompt_rel: 'widget/main/a.prompt.md', attempt: 1, dispatch: { stream: 'PV_JOBS', seq: 4 } });
  fs.writeFileSync(path.join(running, RUN_FILES.log), '[w2] pv-queue work: w2 took job #4 (delivery 1)\n');
  fs.writeFileSync(path.join(running, RUN_FILES.worker), 'w2\n');
  const forged = path.join(root.processed, '20261126-101011-000-eeeeeeee');
  await updateRunStatus(forged, { state: 'claimed', prompt_rel: 'widget/main/b.prompt.md', attempt: 1, dispatch: { stream: 'PV_JOBS', seq: 5 } });
  fs.writeFileSync(path.join(forged, RUN_FILES.worker), '\u001b[2Jw3\n');
  const done = path.join(root.processed, '20261126-090000-000-ffffffff');
  await updateRunStatus(done, { state: 'done', prompt_rel: 'widget/main/c.prompt.md', owner: 'acme', repo: 'widget', branch: 'main', outcome: 'no_changes', worker: 'w1', deliveries: 1 });

  const json = await runBin('pv-status', ['--json', '--config', root.configPath]);
  t.equal(json.code, 0, json.stderr);
  const q = JSON.parse(json.stdout) as { running: { run_id: string; worker?: string }[]; recent: { worker?: string }[] };
  t.same(q.running.map((r) => [r.run_id, r.worker]), [['20261126-101011-000-eeeeeeee', undefined], ['20261126-101010-000-dddddddd', 'w2']],
    'the worker named by worker.txt; a name a terminal could misread is not shown');
  t.equal(q.recent[0]?.worker, 'w1');
  const human = await runBin('pv-status', ['--config', root.configPath]);
  t.match(human.stdout, /a\.prompt\.md  on w2\n/);
  t.match(human.stdout, /no_changes  \(ran on w1\)/);
  t.notMatch(human.stdout, /\u001b/);
});
