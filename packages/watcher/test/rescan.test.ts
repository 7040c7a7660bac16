import t from 'tap';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from '@prompt-valet/core';
import { waitFor } from '@prompt-valet/testkit';
import { Triggers } from '../src/triggers.js';

// The periodic rescan walks the inbox in the watcher: a claimer is told to go
// only when the walk sees a complete prompt (a prompt no event announced is
// still found), and every tick still reaches onRescan (abandoned claims).

const quiet: Logger = { tool: 'test', error() {}, warn() {}, notice() {}, info() {}, debug() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a rescan triggers only for a complete prompt, and ticks every time', async (t) => {
  const inbox = await fs.mkdtemp(path.join(os.tmpdir(), 'pv-rescan-'));
  t.teardown(() => fs.rm(inbox, { recursive: true, force: true }));
  const branch = path.join(inbox, 'widget', 'main');
  await fs.mkdir(branch, { recursive: true });
  // Present before the watch starts: no event will name them.
  await fs.writeFile(path.join(branch, 'empty.prompt.md'), '');
  await fs.writeFile(path.join(branch, 'notes.md'), 'not a prompt');

  const why: string[] = [];
  let ticks = 0;
  const triggers = new Triggers({ inbox, rescanMs: 100, settleMs: 0, log: quiet, onTrigger: (w) => why.push(w), onRescan: () => ticks++ });
  triggers.start();
  t.teardown(() => triggers.stop());
  await sleep(450);
  // The interval timers may fire late on a loaded machine.
  await waitFor('two rescan ticks', () => ticks >= 2, 10_000, 20).catch(() => undefined);
  t.ok(ticks >= 2, `rescans ticked (${ticks})`);
  t.same(why, [], 'nothing complete: no claimer told to go');

  // Written where the watch cannot see it (then moved in with the watch stopped), so only the walk finds it.
  triggers.stop();
  await fs.writeFile(path.join(branch, 'missed.prompt.md'), '# missed by the events\n');
  why.length = 0;
  const again = new Triggers({ inbox, rescanMs: 100, settleMs: 0, log: quiet, onTrigger: (w) => why.push(w) });
  again.start();
  t.teardown(() => again.stop());
  await waitFor('the walk to find the prompt', () => why.includes('rescan'), 10_000, 20).catch(() => undefined);
  t.ok(why.includes('rescan'), `the walk found the prompt no event named (${why.join(', ')})`);
});

t.test('a file event for a prompt name that is gone (a claim unlinking x.prompt.md) sends no claimer', async (t) => {
  const inbox = await fs.mkdtemp(path.join(os.tmpdir(), 'pv-events-'));
  t.teardown(() => fs.rm(inbox, { recursive: true, force: true }));
  const branch = path.join(inbox, 'widget', 'main');
  await fs.mkdir(branch, { recursive: true });
  await fs.writeFile(path.join(branch, 'x.prompt.md'), '# before the watch\n');
  const events: (string | undefined)[] = [];
  const triggers = new Triggers({ inbox, rescanMs: 60_000, settleMs: 0, log: quiet, onTrigger: (w, rel) => w === 'event' && events.push(rel) });
  triggers.start();
  t.teardown(() => triggers.stop());
  await sleep(100);
  // What pv-claim does: link the running name, unlink the prompt name.
  await fs.link(path.join(branch, 'x.prompt.md'), path.join(branch, 'x.running.md'));
  await fs.unlink(path.join(branch, 'x.prompt.md'));
  await sleep(200);
  t.same(events, [], 'no trigger for the claim itself');
  await fs.writeFile(path.join(branch, '.y.prompt.md.upload'), '# new\n');
  await fs.rename(path.join(branch, '.y.prompt.md.upload'), path.join(branch, 'y.prompt.md'));
  await waitFor('the event for y.prompt.md', () => events.length > 0, 10_000, 20).catch(() => undefined);
  t.same(events, ['widget/main/y.prompt.md'], 'a prompt renamed into place still triggers, named');
});
