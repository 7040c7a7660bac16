import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { binPath, makeValetRoot, waitFor } from '@prompt-valet/testkit';
import { expectErrno } from '@prompt-valet/core';

/** Has `pid` started a child yet? At start that is pv-claim --recover: the watcher is in its start phase. */
function hasChild(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() !== '';
  } catch (err) {
    expectErrno(err, 'ENOENT', 'ESRCH');
    return false;
  }
}

function startWatcher(t: Test, configPath: string) {
  // Without tap's loader hooks: they install signal handlers of their own.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS')));
  const child = spawn(process.execPath, [binPath('pv-watcher'), '--config', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...env, NO_COLOR: '1' },
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  // 'close', not 'exit': 'exit' may come before the last of stderr has been read.
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code, signal) => {
      if (signal) stderr += `(ended by ${signal})`;
      resolve(code);
    }),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  t.teardown(() => {
    clearTimeout(timer);
    child.kill('SIGKILL');
  });
  return { child, exited, stderr: () => stderr };
}

t.test('a SIGHUP during start reloads after the start; the watcher lives on', async (t) => {
  const r = await makeValetRoot();
  t.teardown(() => r.cleanup());
  const w = startWatcher(t, r.configPath);
  await waitFor('the start-up recovery', () => hasChild(w.child.pid!), 30_000, 1);
  t.notMatch(w.stderr(), /watching/, 'still starting');
  w.child.kill('SIGHUP');
  await waitFor('the watcher to be watching', () => /watching/.test(w.stderr()) || /ended by/.test(w.stderr()), 60_000);
  t.match(w.stderr(), /watching/, w.stderr());
  await waitFor('the reload', () => /configuration reloaded/.test(w.stderr()), 10_000);
  t.equal(w.child.exitCode, null, 'not ended by the signal');
  w.child.kill('SIGTERM');
  t.equal(await w.exited, 0);
  t.notMatch(w.stderr(), /internal error|at .*\.js:\d+/, 'no stack trace');
});

t.test('a SIGTERM during start stops cleanly: exit 0, no pipeline started, no lock file left', async (t) => {
  const r = await makeValetRoot();
  t.teardown(() => r.cleanup());
  const w = startWatcher(t, r.configPath);
  await waitFor('the start-up recovery', () => hasChild(w.child.pid!), 30_000, 1);
  t.notMatch(w.stderr(), /watching/, 'still starting');
  w.child.kill('SIGTERM');
  t.equal(await w.exited, 0);
  t.match(w.stderr(), /SIGTERM: stopping[\s\S]*stopped/);
  t.notMatch(w.stderr(), /watching/, 'it never started watching');
  const locks = path.join(r.processed, '.ledger', 'locks');
  t.same(fs.existsSync(locks) ? fs.readdirSync(locks) : [], [], 'no claim lock left behind');
});
