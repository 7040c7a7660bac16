import t from 'tap';
import * as os from 'node:os';
import * as net from 'node:net';
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
