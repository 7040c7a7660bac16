import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { git } from '@prompt-valet/core';
import { commitToOrigin, makeOrigin, originBranches, startGitServers } from '../src/index.js';

t.test('git daemon and http-backend serve clone and push', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pv-gitsrv-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const origins = path.join(dir, 'origins');
  const bare = await makeOrigin(path.join(origins, 'acme', 'widget.git'));
  const servers = await startGitServers(origins);
  t.teardown(() => servers.close());

  for (const [kind, url] of [['git', servers.daemon.url('acme/widget.git')], ['http', servers.http.url('acme/widget.git')]] as const) {
    const work = path.join(dir, `clone-${kind}`);
    await git(['clone', '--quiet', '--', url, work]);
    t.ok(await fsp.stat(path.join(work, 'README.md')), `${kind}: cloned`);
    await fsp.writeFile(path.join(work, `${kind}.txt`), kind);
    await git(['add', '-A'], { cwd: work });
    await git(['-c', 'user.name=T', '-c', 'user.email=t@x', 'commit', '-q', '-m', kind], { cwd: work });
    await git(['push', '--quiet', 'origin', `HEAD:refs/heads/from-${kind}`], { cwd: work });
    const local = (await git(['rev-parse', 'HEAD'], { cwd: work })).stdout;
    t.equal((await originBranches(bare)).get(`from-${kind}`), local, `${kind}: push reached the bare repository`);
  }
  t.ok(servers.http.requests > 0, 'the http server answered requests');

  await commitToOrigin(bare, 'main', { 'new.txt': 'x' });
  await git(['fetch', '--quiet', 'origin'], { cwd: path.join(dir, 'clone-git') });
  const upstream = (await originBranches(bare)).get('main');
  t.equal((await git(['rev-parse', 'origin/main'], { cwd: path.join(dir, 'clone-git') })).stdout, upstream, 'fetch over git:// sees new commits');
});
