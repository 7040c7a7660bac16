import t from 'tap';
import { AGENT_MARKER_VAR, buildAgentEnv } from '../src/agent-env.js';

t.test('the agent env drops secrets and every handle on the valet, and sets its own homes', async (t) => {
  const env = buildAgentEnv(
    {
      PATH: '/usr/bin', OPENAI_API_KEY: 'model-key', GH_TOKEN: 'ghp_x', MY_SECRET: 's',
      GH_CONFIG_DIR: '/srv/pv/config/gh', CREDENTIALS_DIRECTORY: '/run/credentials/u', PV_CLAIM_LOCK: 'l1', PV_CONFIG: '/c.yaml',
      PV_CONFIG_PARSED: '{"v":1,"file":"/c.yaml"}',
      PV_FORGE_TOKEN_FILE: '/t', PV_AGENT_CGROUP: '/sys/fs/cgroup/x', SSH_AUTH_SOCK: '/run/user/1/ssh', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/dbus',
      XDG_RUNTIME_DIR: '/run/user/1', NOTIFY_SOCKET: '/run/systemd/notify', HOME: '/srv/pv', TMPDIR: '/var/tmp',
    },
    ['GH_TOKEN', 'MY_SECRET'],
    { PV_RUN_ID: 'r1', PV_PROMPT_FILE: '/run/pv/prompt.md' },
    'marker-1',
    { home: '/run/pv/home', tmp: '/tmp', codexHome: '/run/pv/codex-home' },
  );
  for (const gone of ['GH_TOKEN', 'MY_SECRET', 'GH_CONFIG_DIR', 'CREDENTIALS_DIRECTORY', 'PV_CLAIM_LOCK', 'PV_CONFIG', 'PV_CONFIG_PARSED', 'PV_FORGE_TOKEN_FILE',
    'PV_AGENT_CGROUP', 'SSH_AUTH_SOCK', 'DBUS_SESSION_BUS_ADDRESS', 'XDG_RUNTIME_DIR', 'NOTIFY_SOCKET']) {
    t.notOk(gone in env, `${gone} is not passed`);
  }
  t.equal(env.OPENAI_API_KEY, 'model-key', 'the model key is (codex needs it: docs/security.md)');
  t.match(env, { HOME: '/run/pv/home', TMPDIR: '/tmp', CODEX_HOME: '/run/pv/codex-home', PV_RUN_ID: 'r1', PV_PROMPT_FILE: '/run/pv/prompt.md', [AGENT_MARKER_VAR]: 'marker-1' });
  t.notOk('PV_RUN_ROOT' in env);
});
