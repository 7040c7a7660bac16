import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execTurn, messageTurn } from '@prompt-valet/testkit';
import { scratch } from './fixtures/scratch.js';

/**
 * codex's own sandbox modes (bubblewrap too) inside the valet's jail: its
 * nested --proc mount could fail under the outer jail's covers. Both modes
 * work here, so an operator may narrow the agent further with
 * runner_sandbox (docs/security.md has the table).
 */
const probe = 'echo hi > nested.txt; echo etc > /etc/pv-nested-test; echo done';

t.test('read-only inside the jail: commands run, and cannot write the checkout', async (t) => {
  const s = await scratch(t, { turns: [execTurn(probe), messageTurn('ok')], watcher: { runner_sandbox: 'read-only' } });
  const r = await s.start().done;
  t.notOk(r.records[0]!.error, JSON.stringify(r.records[0]!.error));
  const output = JSON.stringify(s.model.toolOutputs());
  t.match(output, /nested\.txt: Read-only file system/, 'the write was refused by codex\'s sandbox');
  t.match(output, /done/, 'the command ran');
  t.notOk(fs.existsSync(path.join(s.checkout, 'nested.txt')));
});

t.test('workspace-write inside the jail: commands write the checkout and nothing else', async (t) => {
  const s = await scratch(t, { turns: [execTurn(probe), messageTurn('ok')], watcher: { runner_sandbox: 'workspace-write' } });
  const r = await s.start().done;
  t.notOk(r.records[0]!.error, JSON.stringify(r.records[0]!.error));
  t.equal(fs.readFileSync(path.join(s.checkout, 'nested.txt'), 'utf8'), 'hi\n');
  t.match(JSON.stringify(s.model.toolOutputs()), /pv-nested-test: Read-only file system/);
  t.notOk(fs.existsSync('/etc/pv-nested-test'));
});

for (const [sandbox, expected] of [['workspace-write', 'net-closed'], ['danger-full-access', 'net-open']] as const) {
  t.test(`${sandbox} inside the jail: a command's network is ${expected === 'net-open' ? 'open (the jail shares it)' : 'cut by codex\'s sandbox'}`, async (t) => {
    const s = await scratch(t, { turns: [], watcher: { runner_sandbox: sandbox } });
    const port = new URL(s.model.baseUrl).port;
    s.model.push(execTurn(`(exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo net-open || echo net-closed`), messageTurn('ok'));
    const r = await s.start().done;
    t.notOk(r.records[0]!.error, JSON.stringify(r.records[0]!.error));
    const output = JSON.stringify(s.model.toolOutputs());
    t.match(output, `Output:\\n${expected}`);
    t.notMatch(output, `Output:\\n${expected === 'net-open' ? 'net-closed' : 'net-open'}`);
  });
}
