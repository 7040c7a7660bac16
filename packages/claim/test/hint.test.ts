import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { PvRecord } from '@prompt-valet/core';
import { execa } from 'execa';
import { binPath, claimLockedCommand, makeValetRoot, shQuote, type ValetRoot } from '@prompt-valet/testkit';

// `go <rel>`: pv-watcher hands the pre-started claimer the prompt a file
// event named. It is tried first, by the walk's rules; anything else falls
// back to the walk (oldest first), which stays the truth.

async function root(t: { teardown(fn: () => unknown): void }): Promise<ValetRoot> {
  const r = await makeValetRoot();
  t.teardown(() => r.cleanup());
  return r;
}

/** Start `pv-claim --limit N --wait` under a claim lock, send `line`, return the rels it claimed (or, with --dry-run, would claim). */
async function claimWith(r: ValetRoot, line: string, limit = 1, args: string[] = []): Promise<string[]> {
  const command = [process.execPath, binPath('pv-claim'), '--config', r.configPath, '--limit', String(limit), '--wait', ...args].map(shQuote).join(' ');
  const res = await execa('sh', ['-c', claimLockedCommand(r.processed, command)], { input: `${line}\n`, reject: false, timeout: 60_000 });
  if (res.exitCode !== 0) throw new Error(`pv-claim exited ${res.exitCode}: ${String(res.stderr)}`);
  return String(res.stdout)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const rec = JSON.parse(l) as PvRecord & { candidate?: { rel: string } };
      return String(rec.claim?.prompt_rel ?? rec.candidate?.rel ?? '?');
    });
}

/** An old prompt the walk claims first, and a newer one the hint can name. */
async function twoPrompts(r: ValetRoot): Promise<void> {
  await r.dropPrompt('widget/main/old.prompt.md', 'old\n', { ageMs: 3_600_000 });
  await r.dropPrompt('widget/dev/new.prompt.md', 'new\n', { ageMs: 5_000 });
}

t.test('the named prompt is claimed before older ones the walk would take first', async (t) => {
  const r = await root(t);
  await twoPrompts(r);
  t.same(await claimWith(r, 'go widget/dev/new.prompt.md'), ['widget/dev/new.prompt.md']);
  t.same(await claimWith(r, 'go'), ['widget/main/old.prompt.md'], 'a plain go walks');
});

t.test('with a higher limit the walk claims the rest, the named one only once', async (t) => {
  const r = await root(t);
  await twoPrompts(r);
  t.same(await claimWith(r, 'go widget/dev/new.prompt.md', 5), ['widget/dev/new.prompt.md', 'widget/main/old.prompt.md']);
});

t.test('a hint that is not a claimable prompt falls back to the walk', async (t) => {
  const r = await root(t);
  await r.dropPrompt('widget/main/old.prompt.md', 'old\n', { ageMs: 3_600_000 });
  // Each named file exists and is newer than old.prompt.md: only the hint could pick it.
  await r.dropPrompt('widget/main/new.prompt.md', 'new\n', { ageMs: 60_000 });
  const outside = path.join(path.dirname(r.inbox), 'outside.prompt.md');
  await fs.writeFile(outside, 'outside\n');
  await fs.symlink(path.join(r.inbox, 'widget', 'main'), path.join(r.inbox, 'widget', 'linked'));
  await r.dropPrompt('widget/main/.hidden.prompt.md', 'hidden\n', { ageMs: 60_000 });
  await r.dropPrompt('widget/main/notes.md', 'notes\n', { ageMs: 60_000 });
  const hints = [
    '../outside.prompt.md',
    path.join(r.inbox, 'widget/main/new.prompt.md'),
    'widget/linked/new.prompt.md',
    'widget/main/.hidden.prompt.md',
    'widget/main/missing.prompt.md',
    'widget/main/notes.md',
    'widget//main/new.prompt.md',
  ];
  for (const hint of hints) {
    t.same(await claimWith(r, `go ${hint}`, 1, ['--dry-run']), ['widget/main/old.prompt.md'], `${hint}: the walk's oldest instead`);
  }
  t.same(await claimWith(r, 'go widget/main/new.prompt.md', 1, ['--dry-run']), ['widget/main/new.prompt.md'], 'the control: a good hint is taken');

  // Not complete (zero bytes: still being written): not claimed by name either; the walk takes the complete one.
  const r2 = await root(t);
  await r2.dropPrompt('widget/main/old.prompt.md', 'old\n', { ageMs: 3_600_000 });
  await r2.dropPrompt('widget/main/empty.prompt.md', '', { ageMs: 60_000 });
  t.same(await claimWith(r2, 'go widget/main/empty.prompt.md', 5), ['widget/main/old.prompt.md']);
});
