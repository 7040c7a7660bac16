import t from 'tap';
import { stepErrorToRecord } from '../src/cli.js';
import {
  ConfigError, FrontMatterError, FsPermissionError, GitError, LockError, PathEscapeError, PromptTooLargeError,
  PvError, RepoLockError, RequeueError, StepError, ToolError,
} from '../src/index.js';

t.test('every error class is a PvError with a code, retryable and its name', async (t) => {
  const errors: [PvError, string, boolean][] = [
    [new StepError('base_branch_missing', 'm'), 'base_branch_missing', false],
    [new StepError('network', 'm', { retryable: true }), 'network', true],
    [new ToolError('bad_args', 'm', 64), 'bad_args', false],
    [new ConfigError('m'), 'bad_config', false],
    [new GitError('git fetch', 128, 'fatal: unable to access', false), 'git_failed', false],
    [new FrontMatterError('m'), 'bad_front_matter', false],
    [new FsPermissionError('EACCES', '/x', 'm'), 'permission_denied', true],
    [new RepoLockError('m'), 'repo_lock_timeout', true],
    [new PathEscapeError('m'), 'path_escape', false],
    [new RequeueError('m'), 'requeue_refused', false],
    [new PromptTooLargeError('/p', 10, 5), 'prompt_too_large', false],
    [new LockError('m'), 'lock_failed', false],
  ];
  for (const [err, code, retryable] of errors) {
    t.ok(err instanceof PvError, `${err.name} is a PvError`);
    t.equal(err.code, code, `${err.name}: code`);
    t.equal(err.retryable, retryable, `${err.name}: retryable`);
    t.equal(err.name, err.constructor.name, 'named after its class');
  }
});

t.test('cause is the standard one', async (t) => {
  const errno = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  const err = new FsPermissionError('EACCES', '/x', 'one line', errno);
  t.equal(err.cause, errno);
  t.equal(new StepError('x', 'm').cause, undefined, 'none unless given');
});

t.test('a step error becomes the record error by class, not by shape', async (t) => {
  t.same(stepErrorToRecord('clone', new GitError('git fetch', 128, 'fatal: no such remote', false)), {
    step: 'clone', code: 'git_failed', message: 'git fetch: fatal: no such remote', retryable: false, detail: 'fatal: no such remote',
  });
  t.same(stepErrorToRecord('resolve', new ConfigError('x.yaml: bad')), { step: 'resolve', code: 'bad_config', message: 'x.yaml: bad', retryable: false });
  // Shaped like an error with a code, but not one of ours: a bug.
  const lookalike = Object.assign(new Error('boom'), { code: 'git_failed', retryable: true });
  const logged: string[] = [];
  const log = { error: (m: string) => logged.push(m) } as unknown as Parameters<typeof stepErrorToRecord>[2];
  t.match(stepErrorToRecord('clone', lookalike, log), { code: 'internal', retryable: false, message: /internal error in pv-clone: boom/ });
  t.match(logged[0], /internal error: Error: boom/);
});
