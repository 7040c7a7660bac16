import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import type { AgentSection, RunStatus } from '@prompt-valet/core';
import { promptScriptResponder, REPO_ROOT, requestText, startFakeGitHub, startFakeModel, type FakeModel } from '@prompt-valet/testkit';
import { bootDebian, cannotBootReason, readmeBlock, type Container } from './lib/container.js';

/**
 * The live suite: a throwaway Debian 12 with systemd as PID 1, the README's
 * "Install on a server" block run as written (only its placeholders filled
 * in), then the system used as its users use it. One boot for the file.
 */
const PREFIX = '/srv/prompt-valet';
const INBOX = `${PREFIX}/inbox`;
const FINISHED = `${PREFIX}/finished`;
const CLONE = '/root/prompt-valet';
const BRANCHES = ['main', 'dev', 'b-root', 'b-alice', 'b-files', 'b-web', 'b-kill', 'b-tree', 'b-hostile', 'b-sandbox-ro', 'b-sandbox-ww', 'b-sandbox-full', 'b-bomb', 'b-beside', 'b-bigfile'];

t.setTimeout(900_000);

/**
 * codex's sandbox modes, each probed in a folder of its own: the two a prompt may narrow to, and the
 * default (no sandbox of codex's) as the control that shows the probe can see a write and a connection.
 */
const SANDBOX_MODES = ['read-only', 'workspace-write', 'danger-full-access'] as const;
type SandboxMode = (typeof SANDBOX_MODES)[number];
/** What each mode allowed a command, as found on Debian 12 under systemd as the service user (docs/security.md). */
const SANDBOX_FACTS: Record<SandboxMode, { checkout: 'writable' | 'refused'; net: 'open' | 'closed' }> = {
  'read-only': { checkout: 'refused', net: 'closed' },
  'workspace-write': { checkout: 'writable', net: 'closed' },
  'danger-full-access': { checkout: 'writable', net: 'open' },
};
const SANDBOX_FOLDERS: Record<SandboxMode, string> = { 'read-only': 'b-sandbox-ro', 'workspace-write': 'b-sandbox-ww', 'danger-full-access': 'b-sandbox-full' };
const sandboxFolder = (mode: SandboxMode) => SANDBOX_FOLDERS[mode];
const sandboxMarker = (mode: SandboxMode) => `sandbox-probe-${mode}`;

/** A command that reports, one line each, what codex's sandbox let it do: write the checkout, write /etc, connect to the model's port. */
function sandboxProbe(mode: SandboxMode, port: number): string {
  const m = sandboxMarker(mode);
  return [
    `echo "${m}: ran"`,
    `echo ${mode} > nested-${mode}.txt 2>/dev/null && echo "${m}: checkout writable" || echo "${m}: checkout refused"`,
    `echo x > /etc/pv-nested-${mode} 2>/dev/null && echo "${m}: etc writable" || echo "${m}: etc refused"`,
    `(exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo "${m}: net open" || echo "${m}: net closed"`,
  ].join('\n');
}

/** watcher.agent_max_file_bytes in the live config; the big-file prompt writes twice as much */
const FILE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Starts sleepers until a fork fails, holds them (BOMB_HOLDING in the checkout says so) until the suite
 * writes BOMB_RELEASE beside it or BOMB_HOLD_SECONDS pass, then kills them and writes what happened
 * into the checkout. Only shell builtins run while the limit is reached (a fork would fail): `read -t`
 * on a FIFO waits without a process; setsid gives the sleepers a process group of their own to kill.
 */
const BOMB_HOLDING = 'bomb-holding';
const BOMB_RELEASE = 'bomb-release';
/** below codex's longest wait for a command (30 s: it answers "still running" after that and the run ends) */
const BOMB_HOLD_SECONDS = 25;
const FORK_BOMB = [
  'mkfifo /tmp/hold',
  `setsid -w dash -c 'echo $$ > /tmp/bomb.pgid; n=0; while :; do sleep 120 & n=$((n+1)); echo $n > /tmp/bomb.forks; done' 2> /tmp/bomb.err`,
  `: > ${BOMB_HOLDING}`,
  `i=0; while [ ! -e ${BOMB_RELEASE} ] && [ $i -lt ${BOMB_HOLD_SECONDS} ]; do read -t 1 <> /tmp/hold; i=$((i+1)); done`,
  'read pg < /tmp/bomb.pgid; kill -KILL -- -$pg',
  'read n < /tmp/bomb.forks',
  `{ echo "forks before the limit: $n"; [ -e ${BOMB_RELEASE} ] && echo "held until released" || echo "held $i s, not released"; while read -r l; do echo "$l"; done < /tmp/bomb.err; } > bomb-report.txt`,
].join('\n');

if (process.env.PV_LIVE === '0') {
  t.comment('PV_LIVE=0: the live suite (Debian 12 + systemd) is skipped on purpose');
  t.pass('live suite skipped: PV_LIVE=0', { skip: 'PV_LIVE=0' });
} else {
  const why = cannotBootReason();
  if (why) t.fail(`live suite cannot boot the Debian 12 container: ${why}`);
  else t.test('Debian 12 + systemd: install, drop, reload, restart, kill, timer, bad config, uninstall', (tt) => liveSuite(tt));
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitUntil(t: Test, what: string, check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.comment(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
  return false;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

async function liveSuite(t: Test): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-live-host-'));
  const runScript = promptScriptResponder();
  // The fork bomb's command runs until the suite releases it: codex waits for it as long as it may.
  const runBombScript = promptScriptResponder({ yieldTimeMs: 30_000 });
  const model = await startFakeModel([], { respond: (body) => (requestText(body).includes(BOMB_HOLDING) ? runBombScript(body) : runScript(body)) });
  const github = await startFakeGitHub({ dir: path.join(scratch, 'github') });
  const gitPort = await freePort();
  let c: Container | undefined;
  t.teardown(async () => {
    await c?.stop();
    await model.close();
    await github.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  try {
    c = await bootDebian({
      log: (l) => t.comment(l),
      // codex as `npm install -g @openai/codex` leaves it (the 420 MB package is bound, not copied).
      binds: [
        { from: path.join(REPO_ROOT, 'node_modules'), to: `${CLONE}/node_modules` },
        { from: path.join(REPO_ROOT, 'node_modules/@openai'), to: '/usr/local/lib/node_modules/@openai' },
      ],
      prepare(root) {
        // The project as a clone has it: the tracked files plus the build (make install rebuilds what changed).
        const files = spawnSync('git', ['-C', REPO_ROOT, 'ls-files', '-co', '--exclude-standard'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
        const built = spawnSync('sh', ['-c', 'ls -d packages/*/dist packages/*/tsconfig.tsbuildinfo 2>/dev/null'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
        const list = path.join(scratch, 'files');
        fs.writeFileSync(list, [...files, ...built].join('\n'));
        fs.mkdirSync(path.join(root, CLONE.slice(1)), { recursive: true });
        const tar = spawnSync('bash', ['-c', 'set -o pipefail; tar -C "$1" -cf - -T "$2" | tar -C "$3" -xpf -', 'sh', REPO_ROOT, list, path.join(root, CLONE.slice(1))], { encoding: 'utf8', timeout: 120_000 });
        if (tar.status !== 0) throw new Error(`copying the project failed: ${tar.stderr}`);
        fs.mkdirSync(path.join(root, CLONE.slice(1), 'node_modules'), { recursive: true });
        // Node 20 as NodeSource's package lays it down: node bound in, npm and npx beside it.
        fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/bin/npm'));
        fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/bin/npx'));
        fs.mkdirSync(path.join(root, 'usr/local/lib/node_modules/@openai'), { recursive: true });
        fs.symlinkSync('../lib/node_modules/@openai/codex/bin/codex.js', path.join(root, 'usr/local/bin/codex'));
        // The fake GitHub's certificate, trusted as an operator trusts a private CA.
        fs.copyFileSync(github.certFile, path.join(root, 'usr/local/share/ca-certificates/pv-live-fake-github.crt'));
        // Copyparty cannot be installed here: a stand-in that stays up as the real one would.
        fs.writeFileSync(path.join(root, 'usr/local/bin/copyparty'), '#!/bin/sh\n# stand-in for copyparty (not installable on this machine)\nexec sleep infinity\n', { mode: 0o755 });
      },
    });
  } catch (err) {
    t.fail(`live suite cannot boot the Debian 12 container: ${(err as Error).message}`);
    return;
  }
  const box = c;
  const sh = (script: string, timeoutMs?: number) => box.sh(script, timeoutMs);
  const ok = (script: string, what: string, timeoutMs?: number) => {
    const r = sh(script, timeoutMs);
    t.equal(r.code, 0, `${what}${r.code === 0 ? '' : `: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`}`);
    return r;
  };
  const dumpJournal = () => t.comment(sh('journalctl --no-pager -n 200 -u codex-watcher -u codex-tree-builder -u prompt-valet-web -u copyparty').stdout);

  // --- the system around it: users, an origin with push, trust for the fake GitHub
  ok(`update-ca-certificates >/dev/null && useradd -m -s /bin/bash alice && useradd -m -s /bin/bash bob
    set -e; mkdir -p /srv/git/acme && git init -q --bare -b main /srv/git/acme/widget.git
    w=$(mktemp -d) && cd $w && git init -q -b main && git config user.email o@x && git config user.name o
    echo '# widget' > README.md && git add . && git commit -qm init
    for b in ${BRANCHES.join(' ')}; do git push -q /srv/git/acme/widget.git HEAD:refs/heads/$b; done
    chown -R nobody:nogroup /srv/git
    systemd-run --unit=git-origin -p User=nobody git daemon --reuseaddr --base-path=/srv/git --export-all --enable=receive-pack --listen=127.0.0.1 --port=${gitPort}`, 'origin served by git daemon inside');

  // --- the README's block, as written; only its placeholders are filled in
  const block = readmeBlock(fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'), 'Install on a server');
  const flags = `--owner acme --operator alice --host 127.0.0.1:${gitPort} --protocol git --file-server copyparty --web --start`;
  const filled = block.replace('--owner my-org --operator alice --start', flags).replace("'github_pat_…'", "'live-test-token-0123456789'");
  t.not(filled, block, 'the README block has the placeholders the suite fills in');
  const install = ok(`cd ${CLONE} && set -euo pipefail\n${filled}`, 'the README install block runs as written', 400_000);
  if (install.code !== 0) {
    t.comment(install.stdout + install.stderr);
    dumpJournal();
    return;
  }
  t.match(install.stdout + install.stderr, /"check":"jail","ok":true/, 'pv-install --verify: the jail works as the service user');

  // --- a second install changes nothing: content, mode, owner, ACL; no unit restarted
  const snapshot = () => sh(`cd / && find ${PREFIX} /etc/systemd/system -path ${PREFIX}/processed -prune -o -path ${PREFIX}/logs -prune -o -printf '%p %m %u %g %s %T@\\n' | sort; getfacl -R -p ${INBOX} ${PREFIX}/finished 2>/dev/null`).stdout;
  const invocations = () => sh('for u in codex-watcher prompt-valet-web copyparty codex-tree-builder.timer; do systemctl show -p InvocationID --value $u; done').stdout;
  // The timer's pass may fire at any minute: run one now so that the inbox already mirrors upstream.
  ok('systemctl start codex-tree-builder', 'one tree-builder pass before the comparison', 120_000);
  const before = snapshot();
  const ids = invocations();
  const second = ok(`cd ${CLONE} && make install INSTALL_FLAGS="${flags}"`, 'a second make install', 300_000);
  const changes = second.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { action: string; path: string }).filter((l) => l.action !== 'unchanged');
  t.same(changes, [], 'the second install reports 0 changes');
  t.match(second.stderr, /nothing to do/);
  t.equal(snapshot(), before, 'every file keeps its content, mode, owner and ACL');
  t.equal(invocations(), ids, 'no unit was restarted');

  // --- what the operator sets for this model provider and forge, as a drop-in
  const configFile = box.host(`${PREFIX}/config/prompt-valet.yaml`);
  const doc = YAML.parseDocument(fs.readFileSync(configFile, 'utf8'));
  doc.setIn(['watcher', 'runner_model'], 'mock-model');
  doc.setIn(['watcher', 'quiet_seconds'], 1);
  doc.setIn(['watcher', 'rescan_interval_seconds'], 2);
  doc.setIn(['watcher', 'retry_backoff_seconds'], 0);
  doc.setIn(['watcher', 'runner_timeout_seconds'], 120);
  // The hostile prompt, the fork bomb, the sandbox probes, the big file and the run beside the bomb run side by side.
  doc.setIn(['watcher', 'max_parallel'], 7);
  // Small enough for the big-file prompt to reach quickly; far above what codex itself writes.
  doc.setIn(['watcher', 'agent_max_file_bytes'], FILE_LIMIT_BYTES);
  fs.writeFileSync(configFile, doc.toString());
  fs.writeFileSync(box.host(`${PREFIX}/config/codex/config.toml`), [
    'model = "mock-model"', 'model_provider = "mock"', '[model_providers.mock]', 'name = "mock"',
    `base_url = ${JSON.stringify(model.baseUrl)}`, 'wire_api = "responses"', 'env_key = "MOCK_API_KEY"', 'request_max_retries = 0', 'stream_max_retries = 0', '',
  ].join('\n'));
  const ghEnv = github.ghEnv();
  ok(`chown prompt-valet: ${PREFIX}/config/codex/config.toml
    mkdir -p /etc/systemd/system/codex-watcher.service.d
    printf '[Service]\\nEnvironment=MOCK_API_KEY=live GH_HOST=${ghEnv.GH_HOST} GH_PROMPT_DISABLED=1 GH_NO_UPDATE_NOTIFIER=1\\n' > /etc/systemd/system/codex-watcher.service.d/provider.conf
    systemctl daemon-reload && systemctl restart codex-watcher`, 'model provider and forge set in a drop-in');

  // --- prompts dropped by each kind of user
  const prompt = (script: string) => `# Do it\n\n\`\`\`sh\n${script}\n\`\`\`\n`;
  ok(`mkdir -p ${INBOX}/widget/b-root && cat > ${INBOX}/widget/b-root/r.prompt.md <<'EOF'\n${prompt('echo root > from-root.txt')}EOF`, 'root drops into a new folder (umask 022)');
  // Prompt texts are put where every user may read them; each user copies one in with their own tools.
  const texts = box.host('/var/tmp/prompts');
  fs.mkdirSync(texts, { recursive: true, mode: 0o755 });
  for (const who of ['alice', 'files', 'web', 'kill']) {
    fs.writeFileSync(path.join(texts, `${who}.md`), prompt(who === 'kill' ? 'sleep 8; echo killed > from-kill.txt' : `echo ${who} > from-${who}.txt`), { mode: 0o644 });
  }
  ok(`runuser -u alice -- bash -c 'umask 022; mkdir -p ${INBOX}/widget/b-alice && cp /var/tmp/prompts/alice.md ${INBOX}/widget/b-alice/.a.tmp && mv ${INBOX}/widget/b-alice/.a.tmp ${INBOX}/widget/b-alice/a.prompt.md'`, 'alice (drop group) drops into a new folder of hers');
  const copypartyUpload = (dir: string, name: string, text: string) =>
    `runuser -u prompt-valet-copyparty -- bash -c 'mkdir -p ${dir} && : > ${dir}/${name} && cat ${text} > ${dir}/${name}.PARTIAL && mv ${dir}/${name}.PARTIAL ${dir}/${name}'`;
  ok(copypartyUpload(`${INBOX}/widget/b-files`, 'f.prompt.md', '/var/tmp/prompts/files.md'), 'the file server\'s user uploads as Copyparty does');
  const bobWrite = sh(`runuser -u bob -- bash -c "mkdir -p ${INBOX}/widget/b-bob"`);
  t.not(bobWrite.code, 0, 'a user outside the drop group cannot write the inbox');

  // pv-web on its socket: alice may, bob may not
  ok(`mkdir -p ${INBOX}/widget/b-web`, 'the web target folder exists');
  const webPost = (user: string) => sh(`runuser -u ${user} -- node -e '
    const http = require("http");
    const body = JSON.stringify({ target: "widget/b-web", name: "w", text: ${JSON.stringify(prompt('echo web > from-web.txt'))} });
    const req = http.request({ socketPath: "/run/prompt-valet-web/web.sock", path: "/api/prompts", method: "POST", headers: { "content-type": "application/json", host: "localhost" } }, (res) => { console.log(res.statusCode); res.resume(); });
    req.on("error", (e) => { console.log(e.code); });
    req.end(body);'`);
  t.match(webPost('alice').stdout.trim(), /^20[01]$/, 'pv-web accepts a prompt from a drop group member over its socket');
  t.match(webPost('bob').stdout.trim(), /EACCES/, 'pv-web\'s socket refuses a user outside the drop group');

  // Claimable with the service user's real permissions: it may read each prompt and rename it in its folder.
  for (const f of ['b-root/r.prompt.md', 'b-alice/a.prompt.md', 'b-files/f.prompt.md', 'b-web/w.prompt.md']) {
    const file = `${INBOX}/widget/${f}`;
    const probe = sh(`runuser -u prompt-valet -- bash -c 'test -r ${file} && test -w ${path.posix.dirname(file)} && test -x ${path.posix.dirname(file)}'`);
    t.equal(probe.code, 0, `the service user may read ${f} and rename it (${sh(`stat -c '%U %a' ${file}`).stdout.trim()})`);
  }

  const finished = () => listFiles(box.host(FINISHED));
  const settled = (folder: string) => finished().filter((f) => f.startsWith(`widget/${folder}/`) && /\.(done|error)\.md$/.test(f));
  await waitUntil(t, 'the four prompts to settle', () => ['b-root', 'b-alice', 'b-files', 'b-web'].every((b) => settled(b).length >= 1), 120_000);
  for (const b of ['b-root', 'b-alice', 'b-files', 'b-web']) t.same(settled(b).filter((f) => f.endsWith('.done.md')).length, 1, `${b}: the prompt ends as .done.md`);
  // When something is off, the watcher's own words are the first thing to read.
  if (!['b-root', 'b-alice', 'b-files', 'b-web'].every((b) => settled(b).some((f) => f.endsWith('.done.md')))) {
    t.comment(sh('journalctl --no-pager -q -u codex-watcher | tail -n 60').stdout);
  }

  const branches = sh('git -c safe.directory=* -C /srv/git/acme/widget.git for-each-ref --format="%(refname:short)" refs/heads/codex').stdout.trim().split('\n').filter(Boolean);
  t.equal(branches.length, 4, `one agent branch upstream per done prompt: ${branches.join(', ')}`);
  t.equal(github.pullRequests.length, 4, 'one PR per done prompt');
  t.ok(github.requests.every((r) => r.token === 'live-test-token-0123456789'), 'gh used the token from the credential');
  t.same(sh('journalctl --no-pager -q -p err -u codex-watcher').stdout.trim(), '', 'journalctl -p err -u codex-watcher is empty after the happy path');

  // The file server's user reads results but cannot change run state.
  ok(`runuser -u prompt-valet-copyparty -- bash -c 'cat ${FINISHED}/widget/b-root/r.done.md >/dev/null && ls ${PREFIX}/processed >/dev/null'`, 'Copyparty\'s user may read finished/ and processed/');
  t.not(sh(`runuser -u prompt-valet-copyparty -- touch ${PREFIX}/processed/x ${FINISHED}/x`).code, 0, 'Copyparty\'s user cannot write processed/ or finished/');

  // An operator's 0600 prompt (scp -p): unreadable to the service, it ends as a clear error.
  // As scp -p leaves it: mode 0600 (the inbox's default ACL overrides a umask, so the mode is what counts).
  ok(`runuser -u alice -- bash -c 'install -m 0600 /var/tmp/prompts/alice.md ${INBOX}/widget/b-alice/.p.tmp && mv ${INBOX}/widget/b-alice/.p.tmp ${INBOX}/widget/b-alice/private.prompt.md'`, 'alice drops a 0600 prompt');
  t.not(sh(`runuser -u prompt-valet -- test -r ${INBOX}/widget/b-alice/private.prompt.md`).code, 0, 'the service user cannot read it');
  await waitUntil(t, 'the 0600 prompt to settle', () => settled('b-alice').some((f) => /private\.error\.md$/.test(f)), 60_000);
  t.ok(settled('b-alice').some((f) => /private\.error\.md$/.test(f)), 'alice\'s 0600 prompt ends as .error.md');
  // pv-settle moves the prompt into finished/ first, then writes the reason beside it.
  await waitUntil(t, 'the reason beside the 0600 prompt', () => fs.existsSync(box.host(`${FINISHED}/widget/b-alice/private.error.txt`)), 10_000);
  const reason = sh(`cat ${FINISHED}/widget/b-alice/private.error.txt`).stdout;
  t.match(reason, /0600|chmod|readable/i, 'the reason says what is wrong');
  if (fs.existsSync(box.host(`${INBOX}/widget/b-alice/private.prompt.md`))) {
    // Not settled: set it aside (never deleted) so that it does not hold up the queue for the steps below.
    sh(`mkdir -p /root/unsettled && mv ${INBOX}/widget/b-alice/private.prompt.md /root/unsettled/`);
  }
  // --- the timer runs pv-tree; its folders are droppable too
  // --- a hostile agent, under the units as installed: the real codex runs what the prompt says
  // (testkit's model answers with the prompt's own sh block). Every route out of the jail is tried;
  // what worked is written into the checkout, so it is pushed and can be read back upstream.
  const watcherMainPid = () => sh('systemctl show -p MainPID --value codex-watcher').stdout.trim();
  const watcherPid = watcherMainPid();
  const routes = [
    `echo "processes: $(ls /proc | grep -c '^[0-9]')"`,
    `for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f" 2>/dev/null | grep -qE 'CREDENTIALS[_]DIRECTORY|GH[_]TOKEN|live-test-toke[n]' && echo "LEAK environ: $f"; done`,
    `cat ${PREFIX}/config/credentials/gh_token 2>/dev/null && echo "LEAK credential file"`,
    `ls /run/credentials 2>/dev/null | grep . && echo "LEAK /run/credentials"`,
    `ls ${PREFIX}/config 2>/dev/null | grep . && echo "LEAK config listed"`,
    `touch ${INBOX}/widget/main/injected.prompt.md 2>/dev/null && echo "LEAK wrote the inbox"`,
    `touch ${PREFIX}/processed/hostile 2>/dev/null && echo "LEAK wrote processed"`,
    `touch ${FINISHED}/hostile 2>/dev/null && echo "LEAK wrote finished"`,
    // Its own checkout is bound in at its path (so .worktrees/<owner>/<repo> exist); no other run's may be.
    `for d in ${PREFIX}/repos/.worktrees/*/*/*; do [ -e "$d" ] && [ "$(basename "$d")" != "$PV_RUN_ID" ] && echo "LEAK another run's worktree: $d"; done`,
    `ls ${PREFIX}/repos/acme/widget/.git/hooks >/dev/null 2>&1 && touch ${PREFIX}/repos/acme/widget/.git/hooks/pre-commit 2>/dev/null && echo "LEAK wrote the shared clone's hooks"`,
    `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f" 2>/dev/null | grep -qE 'pv[-]watcher|pv[-]claim|pv[-]publish|system[d]' && echo "LEAK a process outside the jail is visible: $f"; done`,
    `kill -9 ${watcherPid} 2>/dev/null && echo "LEAK killed the watcher"`,
    // The valet's handles on a run: the claim lock (fd 9), the agent gate (fd 4), the parsed config it hands its steps.
    `for fd in 4 9; do l=$(readlink /proc/self/fd/$fd 2>/dev/null); case "$l" in socket:*|*.lock) echo "LEAK fd $fd is $l" ;; esac; done`,
    `env | grep -q '^PV_CONFIG_PARSED=' && echo "LEAK the parsed config (PV_CONFIG_PARSED)"`,
    `env | grep -q '^PV_AGENT_GATE_FD=' && echo "LEAK the agent gate's variable"`,
    `echo "report done"`,
  ];
  const drop = (folder: string, name: string, text: string, what: string) =>
    ok(`mkdir -p ${INBOX}/widget/${folder} && cat > ${INBOX}/widget/${folder}/.${name}.tmp <<'EOF'\n${text}EOF\nmv ${INBOX}/widget/${folder}/.${name}.tmp ${INBOX}/widget/${folder}/${name}.prompt.md`, what);
  // Dropped with the checks below (codex's sandbox modes, a fork bomb beside a normal run): they run
  // side by side, which keeps the suite short.
  drop('b-bomb', 'bomb', prompt(FORK_BOMB), 'a fork bomb prompt');
  drop('b-hostile', 'h', prompt(`{\n${routes.join('\n')}\n} > hostile-report.txt 2>&1`), 'a hostile prompt');
  drop('b-bigfile', 'bigfile', prompt(`head -c ${2 * FILE_LIMIT_BYTES} /dev/zero > big.bin; echo "writer: $?" > after.txt`), 'a prompt writing a file twice the size limit');
  for (const mode of SANDBOX_MODES) drop(sandboxFolder(mode), `sb-${mode}`, `---\nsandbox: ${mode}\n---\n${prompt(sandboxProbe(mode, model.port))}`, `a prompt narrowing codex's sandbox to ${mode}`);
  // A normal prompt is dropped once the bomb holds every process it could start, and the bomb is let go
  // once that run's agent is running: the valet starts a run while a jail sits at its process limit.
  const bombCheckout = () => sh(`ls -d ${PREFIX}/repos/.worktrees/acme/widget/*/${BOMB_HOLDING} 2>/dev/null`).stdout.trim().split('\n')[0]?.replace(`/${BOMB_HOLDING}`, '') ?? '';
  const bombHolding = await waitUntil(t, 'the fork bomb to hold its processes', () => bombCheckout() !== '' || settled('b-bomb').length > 0, 90_000) && bombCheckout() !== '';
  drop('b-beside', 'beside', prompt('echo beside > from-beside.txt'), 'a normal prompt beside the fork bomb');
  const besideAgentRan = () => /^(?!pv-run-codex:).+/m.test(runFileFor(box.host(`${PREFIX}/processed`), 'widget/b-beside/', 'agent.log'));
  const besideRanWhileBombHeld = bombHolding && (await waitUntil(t, 'the run beside the bomb to start its agent', () => besideAgentRan() || settled('b-beside').length > 0, (BOMB_HOLD_SECONDS - 5) * 1000));
  if (bombHolding) sh(`runuser -u prompt-valet -- touch ${bombCheckout()}/${BOMB_RELEASE}`);
  await waitUntil(t, 'the hostile prompt to settle', () => settled('b-hostile').length >= 1, 120_000);
  t.same(settled('b-hostile'), ['widget/b-hostile/h.done.md'], 'the hostile run ends (its report is its work)');
  /** The agent branch pushed upstream for the prompt `<name>.prompt.md` ('' when none). */
  const agentBranch = (name: string) => sh('git -c safe.directory=* -C /srv/git/acme/widget.git for-each-ref --format="%(refname:short)" refs/heads/codex').stdout.split('\n').find((b) => b.startsWith(`codex/${name}-`)) ?? '';
  const hostileBranch = agentBranch('h');
  const report = sh(`git -c safe.directory=* -C /srv/git/acme/widget.git show ${hostileBranch}:hostile-report.txt`).stdout;
  t.match(report, /report done/, 'the report was pushed whole');
  t.notMatch(report, /LEAK/, `no route out of the jail worked:\n${report}`);
  const procs = Number(/processes: (\d+)/.exec(report)?.[1] ?? '999');
  t.ok(procs <= 12, `the jail's /proc shows only the agent's own few processes (${procs})`);
  t.notOk(fs.existsSync(box.host(`${INBOX}/widget/main/injected.prompt.md`)), 'no prompt injected into the inbox');
  t.equal(watcherMainPid(), watcherPid, 'the watcher was not killed');
  const everything = sh(`git -c safe.directory=* -C /srv/git/acme/widget.git log -p ${hostileBranch}; cat ${PREFIX}/processed/*/*.md ${PREFIX}/processed/*/*.json ${PREFIX}/processed/*/agent.log 2>/dev/null; journalctl --no-pager -q -u codex-watcher`).stdout;
  t.notMatch(everything, /live-test-token-0123456789/, 'the token is in no pushed commit, run folder file or log');
  t.notOk(github.pullRequests.some((p) => JSON.stringify(p).includes('live-test-token-0123456789')), 'nor in any PR');
  // Which limits the run got under the unit as installed (cgroup v2 with Delegate=yes, or rlimits only).
  t.comment(`hostile run's limits: ${sh(`grep -h -A12 '"limits"' ${PREFIX}/processed/*/status.json | head -n 14`).stdout}`);

  // --- codex's own sandbox modes inside the jail, as the service user under systemd (docs/security.md's table).
  // What each command met is what codex sent back to the model as the command's output.
  await waitUntil(t, 'the sandbox probes to settle', () => SANDBOX_MODES.every((m) => settled(sandboxFolder(m)).length >= 1), 120_000);
  for (const mode of SANDBOX_MODES) {
    const folder = sandboxFolder(mode);
    t.same(settled(folder), [`widget/${folder}/sb-${mode}.done.md`], `sandbox ${mode}: the run ends as .done.md`);
    t.equal(agentOfRun(box.host(`${PREFIX}/processed`), `widget/${folder}/`)?.sandbox, mode, `sandbox ${mode}: codex ran with --sandbox ${mode}`);
    const output = toolOutputsFor(model, sandboxMarker(mode)).join('\n');
    t.match(output, new RegExp(`${sandboxMarker(mode)}: ran`), `sandbox ${mode}: codex ran the command${mode === 'danger-full-access' ? '' : ' (its own sandbox started in the jail)'}:\n${output}`);
    const expected = SANDBOX_FACTS[mode];
    t.match(output, new RegExp(`${sandboxMarker(mode)}: checkout ${expected.checkout}`), `sandbox ${mode}: a write to the checkout is ${expected.checkout}`);
    // /etc is read-only in the jail itself, whatever codex's sandbox.
    t.match(output, new RegExp(`${sandboxMarker(mode)}: etc refused`), `sandbox ${mode}: a write outside the checkout is refused`);
    t.match(output, new RegExp(`${sandboxMarker(mode)}: net ${expected.net}`), `sandbox ${mode}: a command's network is ${expected.net}`);
    const branch = agentBranch(`sb-${mode}`);
    const pushed = sh(`git -c safe.directory=* -C /srv/git/acme/widget.git show ${branch}:nested-${mode}.txt`).code === 0;
    t.equal(pushed, expected.checkout === 'writable', `sandbox ${mode}: the file the command wrote ${expected.checkout === 'writable' ? 'is' : 'is not'} on the agent branch (${branch || 'none'})`);
  }

  // --- a fork bomb beside a normal run, as the service user under the unit as installed. With a delegated
  // cgroup (the target, cgroup v2) the bomb trips pids.max and settles as resource_limit at once; without
  // one (this host's nspawn, see docs/security.md) RLIMIT_NPROC in the jail's user namespace stops its
  // forks, the bomb's own run ends (it reports how far it got), and the watcher and the other run carry on.
  await waitUntil(t, 'the fork bomb and the run beside it to settle', () => settled('b-bomb').length >= 1 && settled('b-beside').length >= 1, 120_000);
  t.same(settled('b-beside'), ['widget/b-beside/beside.done.md'], 'the run beside the fork bomb ends as .done.md');
  const bombAgent = agentOfRun(box.host(`${PREFIX}/processed`), 'widget/b-bomb/');
  const bombLimits = bombAgent?.limits;
  t.comment(`fork bomb's limits: ${JSON.stringify(bombLimits)}`);
  t.equal(bombLimits?.isolation, 'bwrap', 'the bomb ran in the jail');
  if (bombLimits?.cgroup && bombLimits.cgroup !== 'none') {
    t.same(settled('b-bomb'), ['widget/b-bomb/bomb.error.md'], 'with a cgroup: the fork bomb ends as .error.md');
    t.same(bombAgent?.limits_tripped, ['processes'], 'its reason is resource_limit (processes)');
  } else {
    t.equal(bombLimits?.rlimit_nproc, 512, 'without a cgroup the jail\'s RLIMIT_NPROC applies');
    t.same(settled('b-bomb'), ['widget/b-bomb/bomb.done.md'], 'the fork bomb\'s run ends by its own exit');
    const bombReport = sh(`git -c safe.directory=* -C /srv/git/acme/widget.git show ${agentBranch('bomb')}:bomb-report.txt`).stdout;
    const forks = Number(/forks before the limit: (\d+)/.exec(bombReport)?.[1] ?? 'NaN');
    t.ok(forks > 100 && forks < 512, `RLIMIT_NPROC stopped the bomb's forks below 512 (${forks}):\n${bombReport}`);
    t.match(bombReport, /Cannot fork/, 'its fork failed (the limit, not the bomb, ended it)');
    t.ok(besideRanWhileBombHeld, 'the run beside it was claimed and its agent ran while the bomb held its processes');
    t.match(bombReport, /held until released/, 'the bomb held them until then');
  }
  t.equal(watcherMainPid(), watcherPid, 'the watcher lives on after the fork bomb');

  // --- a file twice the size limit: RLIMIT_FSIZE cuts it, the writer dies of SIGXFSZ inside the jail while
  // codex goes on and ends well; the cut file settles the run as resource_limit (not .done.md with a cut file in its PR).
  await waitUntil(t, 'the big-file prompt to settle', () => settled('b-bigfile').length >= 1, 120_000);
  t.same(settled('b-bigfile'), ['widget/b-bigfile/bigfile.error.md'], 'the big-file run ends as .error.md');
  t.same(agentOfRun(box.host(`${PREFIX}/processed`), 'widget/b-bigfile/')?.limits_tripped, ['file_size'], 'the file size limit tripped');
  // pv-settle moves the prompt into finished/ first, then writes the reason beside it.
  await waitUntil(t, 'the reason beside the big-file prompt', () => fs.existsSync(box.host(`${FINISHED}/widget/b-bigfile/bigfile.error.txt`)), 10_000);
  const bigReason = sh(`cat ${FINISHED}/widget/b-bigfile/bigfile.error.txt`).stdout;
  t.match(bigReason, new RegExp(`limit of ${FILE_LIMIT_BYTES} bytes per file.*big\\.bin`), `the reason names the limit and the cut file:\n${bigReason}`);

  // --- a clone whose origin is a repository on this host (file://): pv-tree reads its branches from the
  // origin's files as the service user, under the unit's sandbox (packed and loose refs), while widget's
  // origin (git daemon) is still asked with git.
  ok(`set -e; mkdir -p /srv/local-origin && git init -q --bare -b main /srv/local-origin/gadget.git
    w=$(mktemp -d) && cd $w && git init -q -b main && git -c user.email=o@x -c user.name=o commit -q --allow-empty -m init
    git push -q /srv/local-origin/gadget.git HEAD:refs/heads/main HEAD:refs/heads/feature/packed
    git -C /srv/local-origin/gadget.git pack-refs --all
    git push -q /srv/local-origin/gadget.git HEAD:refs/heads/b-loose
    chown -R prompt-valet:prompt-valet /srv/local-origin
    runuser -u prompt-valet -- env HOME=/tmp git clone -q file:///srv/local-origin/gadget.git ${PREFIX}/repos/acme/gadget`, 'a clone with an origin on this host');
  const treeSummaries = () => sh('journalctl --no-pager -o cat -u codex-tree-builder').stdout.split('\n').filter((l) => l.startsWith('{"v":1,"summary"'));
  const summariesBefore = treeSummaries().length;
  ok('systemctl start codex-tree-builder', 'the tree builder runs (as its timer starts it)', 120_000);
  t.equal(sh('systemctl show -p Result --value codex-tree-builder').stdout.trim(), 'success');
  t.ok(fs.existsSync(box.host(`${INBOX}/widget/b-tree`)), 'pv-tree made the folder of an upstream branch');
  for (const folder of ['main', 'feature~packed', 'b-loose']) {
    t.ok(fs.existsSync(box.host(`${INBOX}/gadget/${folder}`)), `pv-tree made gadget/${folder} from the local origin's refs`);
  }
  // journald reads the unit's stdout on its own time: the pass's summary may reach the journal after the unit ended.
  await waitUntil(t, 'the pass\'s summary in the journal', () => treeSummaries().length > summariesBefore, 15_000);
  const summary = (JSON.parse(treeSummaries().slice(summariesBefore).pop() ?? '{}') as { summary?: { local_listings?: number; git_commands?: number; failed?: number } }).summary;
  t.equal(summary?.local_listings, 1, 'gadget was listed from its origin\'s files, without git');
  t.ok((summary?.git_commands ?? 0) >= 2, 'widget (git daemon) was still asked with git, after the one config check');
  t.equal(summary?.failed, 0, 'no listing failed');
  ok(`runuser -u alice -- bash -c "touch ${INBOX}/widget/b-tree/.probe && rm ${INBOX}/widget/b-tree/.probe"`, 'alice may drop into a folder pv-tree made');

  // --- reload, restart
  const mainPid = () => sh('systemctl show -p MainPID --value codex-watcher').stdout.trim();
  const pid0 = mainPid();
  ok('systemctl reload codex-watcher', 'systemctl reload codex-watcher');
  t.equal(mainPid(), pid0, 'reload keeps the same watcher');
  const good = fs.readFileSync(configFile, 'utf8');
  fs.writeFileSync(configFile, good.replace(/max_parallel: \d+/, 'max_parallel: lots'));
  t.not(sh('systemctl reload codex-watcher').code, 0, 'a bad config: the reload is refused');
  t.equal(sh('systemctl is-active codex-watcher').stdout.trim(), 'active', 'the old watcher keeps running');
  t.equal(mainPid(), pid0);
  fs.writeFileSync(configFile, good);
  ok('systemctl restart codex-watcher', 'systemctl restart codex-watcher');
  const pid1 = mainPid();
  t.not(pid1, pid0, 'restart: a new watcher');
  ok('systemctl reload codex-watcher', 'reload right after start');
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(sh('systemctl is-active codex-watcher').stdout.trim(), 'active', 'a reload right after start leaves it running');
  t.equal(mainPid(), pid1, 'the same watcher: SIGHUP did not end it');

  // --- kill -9 of the watcher mid-run: restarted, the run completes exactly once
  ok(`cp /var/tmp/prompts/kill.md ${INBOX}/widget/b-kill/.k.tmp && mv ${INBOX}/widget/b-kill/.k.tmp ${INBOX}/widget/b-kill/k.prompt.md`, 'a slow prompt');
  await waitUntil(t, 'the slow prompt to run', () => fs.existsSync(box.host(`${INBOX}/widget/b-kill/k.running.md`)), 60_000);
  const before9 = mainPid();
  ok(`kill -9 ${before9}`, 'kill -9 the watcher\'s main PID');
  t.ok(await waitUntil(t, 'systemd to restart the watcher', () => { const p = mainPid(); return p !== '0' && p !== before9 && sh('systemctl is-active codex-watcher').stdout.trim() === 'active'; }, 30_000), 'systemd restarts it');
  await waitUntil(t, 'the slow prompt to settle', () => settled('b-kill').length >= 1, 180_000);
  t.same(settled('b-kill'), ['widget/b-kill/k.done.md'], 'the run completes once, as .done.md');
  if (settled('b-kill').some((f) => f.endsWith('.error.md'))) t.comment(sh(`cat ${FINISHED}/widget/b-kill/*.error.txt; journalctl --no-pager -q -u codex-watcher | tail -n 40`).stdout);
  const killBranches = sh('git -c safe.directory=* -C /srv/git/acme/widget.git for-each-ref --format="%(refname:short)" refs/heads/codex').stdout.split('\n').filter((b) => /^codex\/k/.test(b));
  t.equal(killBranches.length, 1, 'one agent branch for it');
  t.equal(github.pullRequests.filter((p) => killBranches.includes(p.head)).length, 1, 'one PR for it');

  // --- a bad config: status 78, no restart loop
  fs.writeFileSync(configFile, good.replace(/max_parallel: \d+/, 'max_parallel: lots'));
  sh('systemctl restart codex-watcher');
  await new Promise((r) => setTimeout(r, 12_000));
  // The 12 s give a restart loop time to show (NRestarts below); the exit itself may take longer on a loaded host.
  await waitUntil(t, 'the watcher to exit 78 and stay down', () => sh('systemctl show -p ExecMainStatus --value codex-watcher').stdout.trim() === '78' && sh('systemctl is-active codex-watcher').stdout.trim() !== 'active', 30_000);
  t.equal(sh('systemctl show -p ExecMainStatus --value codex-watcher').stdout.trim(), '78', 'the watcher exits 78');
  t.not(sh('systemctl is-active codex-watcher').stdout.trim(), 'active', 'and stays down');
  t.equal(sh('systemctl show -p NRestarts --value codex-watcher').stdout.trim(), '0', 'not restarted in a loop');
  const badLines = sh('journalctl --no-pager -q -p err -u codex-watcher -o cat').stdout.trim().split('\n').filter(Boolean);
  // Exactly these: the 0600 prompt, the big file's resource_limit, the refused reload (pv-install
  // --check-config's line and systemd's), and the exit 78 (systemd may log its result too).
  const required = [/private\.prompt\.md|prompt_unreadable/, /settled error resource_limit/, /max_parallel/, /Reload failed for codex-watcher/];
  const allowed = [...required, /Failed with result|exit-code|status=78/];
  t.same(badLines.filter((l) => !allowed.some((re) => re.test(l))), [], 'the journal\'s errors are only the expected ones');
  for (const re of required) t.ok(badLines.some((l) => re.test(l)), `the journal holds ${re}`);
  fs.writeFileSync(configFile, good);
  ok('systemctl reset-failed codex-watcher; systemctl start codex-watcher', 'a fixed config starts again');

  // --- make uninstall keeps the operator's data
  const data = ['inbox', 'processed', 'finished', 'repos', 'config', 'logs'];
  // Every path there before is there after (the watcher, just started again, may still add some).
  const paths = () => new Set(sh(`find ${data.map((d) => `${PREFIX}/${d}`).join(' ')}`).stdout.split('\n').filter(Boolean));
  const dataBefore = paths();
  ok(`cd ${CLONE} && make uninstall`, 'make uninstall');
  t.notOk(fs.existsSync(box.host('/etc/systemd/system/codex-watcher.service')), 'the units are gone');
  const after = paths();
  t.ok(dataBefore.size > 1000, `the data to keep (${dataBefore.size} paths)`);
  t.same([...dataBefore].filter((p) => !after.has(p)), [], 'inbox, processed, finished, repos, config and logs are kept: no path gone');
  t.equal(fs.readFileSync(configFile, 'utf8'), good, 'the config is untouched');

  if (t.counts.fail > 0) dumpJournal();
}

/** The run folder of the run whose prompt lay under `promptPrefix` (e.g. `widget/b-bomb/`), if it exists yet. */
function runFolderFor(processed: string, promptPrefix: string): string | undefined {
  for (const run of fs.readdirSync(processed)) {
    const status = path.join(processed, run, 'status.json');
    if (!fs.existsSync(status)) continue;
    // status.json is replaced atomically (rename): a read sees a whole one.
    if ((JSON.parse(fs.readFileSync(status, 'utf8')) as RunStatus).prompt_rel.startsWith(promptPrefix)) return path.join(processed, run);
  }
  return undefined;
}

/** What pv-run-codex recorded of the agent in that run's status.json. */
function agentOfRun(processed: string, promptPrefix: string): AgentSection | undefined {
  const run = runFolderFor(processed, promptPrefix);
  return run ? ((JSON.parse(fs.readFileSync(path.join(run, 'status.json'), 'utf8')) as RunStatus).agent as AgentSection | undefined) : undefined;
}

/** A file of that run folder ('' when there is none yet). */
function runFileFor(processed: string, promptPrefix: string, name: string): string {
  const run = runFolderFor(processed, promptPrefix);
  return run && fs.existsSync(path.join(run, name)) ? fs.readFileSync(path.join(run, name), 'utf8') : '';
}

/** The outputs of the commands codex ran for the prompt holding `marker`, as it sent them to the model. */
function toolOutputsFor(model: FakeModel, marker: string): string[] {
  const outputs: string[] = [];
  for (const r of model.requests) {
    if (!requestText(r.body).includes(marker)) continue;
    const input = (r.body as { input?: unknown } | undefined)?.input;
    if (!Array.isArray(input)) continue;
    for (const item of input as Array<{ type?: unknown; output?: unknown }>) {
      if (item.type === 'function_call_output') outputs.push(typeof item.output === 'string' ? item.output : JSON.stringify(item.output));
    }
  }
  return outputs;
}
