import t from 'tap';
import * as os from 'node:os';
import * as net from 'node:net';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { git, GitError, gitReason } from '../src/git.js';

t.test('a failed git command keeps its whole reason, on one line', async (t) => {
  // A port with nothing listening: git says where it tried and why, over two lines.
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const err = await git(['ls-remote', `git://127.0.0.1:${port}/x.git`], { cwd: os.tmpdir() }).catch((e: unknown) => e);
  t.ok(err instanceof GitError, 'a GitError');
  const message = (err as GitError).message;
  t.match(message, /unable to connect to 127\.0\.0\.1/, 'the first line');
  t.match(message, /Connection refused/, 'and the errno line after it');
  t.notMatch(message, /\n/, 'one line');
});

t.test('gitReason joins the lines and bounds the length', async (t) => {
  t.equal(gitReason('fatal: a\n\n  b: errno=x\n'), 'fatal: a b: errno=x');
  t.equal(gitReason(''), '');
  const long = gitReason('x'.repeat(5000));
  t.ok(long.length <= 601 && long.endsWith('…'), 'bounded');
});

t.test('input goes to stdin; the final newline of the output is stripped', async (t) => {
  const { stdout } = await git(['hash-object', '--stdin'], { cwd: os.tmpdir(), input: 'hello\n' });
  t.equal(stdout, 'ce013625030ba8dba906f756967f9e9ca394464a', 'the blob id of "hello\\n", no newline after it');
});

t.test('without input, stdin is empty: git reading it does not wait', async (t) => {
  const { stdout } = await git(['hash-object', '--stdin'], { cwd: os.tmpdir(), timeout: 5_000 });
  t.equal(stdout, 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391', 'the blob id of an empty file');
});

t.test('a git that runs past its timeout is stopped, and the failure is worth retrying', async (t) => {
  const started = Date.now();
  // An alias running a shell command: git waits for it, and passes its own SIGTERM on.
  const err = await git(['-c', 'alias.hang=!sleep 5', 'hang'], { cwd: os.tmpdir(), timeout: 300 }).catch((e: unknown) => e);
  t.ok(err instanceof GitError, 'a GitError');
  t.match((err as GitError).message, /^git -c alias\.hang=!sleep 5 hang: timed out$/, 'says it timed out');
  t.equal((err as GitError).retryable, true, 'retryable');
  t.ok(Date.now() - started < 3_000, `stopped at once (${Date.now() - started} ms)`);
});

t.test('git missing from PATH says so in one line', async (t) => {
  const empty = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-git-nopath-'));
  t.teardown(() => fsp.rm(empty, { recursive: true, force: true }));
  const err = await git(['--version'], { cwd: os.tmpdir(), env: { PATH: empty } }).catch((e: unknown) => e);
  t.ok(err instanceof GitError, 'a GitError');
  t.equal((err as GitError).message, 'git --version: git is not installed (not found on PATH)');
  t.equal((err as GitError).retryable, false, 'not retryable');
});

t.test('a working folder that does not exist is named, not taken for a missing git', async (t) => {
  const gone = path.join(os.tmpdir(), `pv-git-gone-${process.pid}`);
  const err = await git(['status'], { cwd: gone }).catch((e: unknown) => e);
  t.ok(err instanceof GitError, 'a GitError');
  t.equal((err as GitError).message, `git status: the folder ${gone} does not exist`);
});

t.test('credentials in a failed command and in git\'s stderr are redacted', async (t) => {
  const err = await git(['ls-remote', 'https://someone:s3cr3t-t0ken@127.0.0.1:1/x.git'], { cwd: os.tmpdir(), timeout: 20_000 }).catch((e: unknown) => e);
  t.ok(err instanceof GitError, 'a GitError');
  const e = err as GitError;
  t.notMatch(`${e.message}\n${e.command}\n${e.stderr}\n${String(e.detail)}`, /s3cr3t/, 'the token appears nowhere');
  t.match(e.command, 'https://***@127.0.0.1:1/x.git', 'the command names the URL without it');
  t.not(e.exitCode, 0, 'a failing exit code');
});

t.test('output past maxOutput stops git with a clear error', async (t) => {
  const err = await git(['--version'], { cwd: os.tmpdir(), maxOutput: 4 }).catch((e: unknown) => e);
  t.ok(err instanceof GitError, 'a GitError');
  t.equal((err as GitError).message, 'git --version: git printed more than 4 bytes on stdout; stopped it (GitOptions.maxOutput)');
  const { stdout } = await git(['--version'], { cwd: os.tmpdir() });
  t.match(stdout, /^git version /, 'the default bound lets ordinary output through');
});
