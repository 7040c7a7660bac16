import t from 'tap';
import { probeAgentJail } from '../src/index.js';

t.test('the jail probe passes where bwrap can make its namespaces', async (t) => {
  t.same(probeAgentJail('bwrap'), { ok: true });
});

t.test('bubblewrap missing: one line that says to install it or choose none', async (t) => {
  const probe = probeAgentJail('bwrap', 'pv-no-such-bwrap');
  t.equal(probe.ok, false);
  if (!probe.ok) {
    t.match(probe.message, /apt-get install bubblewrap/);
    t.match(probe.message, /agent_isolation: none/);
    t.notMatch(probe.message, /\n/);
  }
});

t.test('namespaces refused (bwrap fails): one line naming the AppArmor and sysctl fixes', async (t) => {
  const probe = probeAgentJail('bwrap', '/bin/false');
  t.equal(probe.ok, false);
  if (!probe.ok) {
    t.match(probe.message, /unprivileged user namespaces/);
    t.match(probe.message, /AppArmor/);
    t.notMatch(probe.message, /\n/);
  }
});

t.test('agent_isolation none on purpose: starts, with a warning every time', async (t) => {
  const probe = probeAgentJail('none', 'pv-no-such-bwrap');
  t.equal(probe.ok, true);
  if (probe.ok) t.match(probe.warning, /without the jail/);
});
