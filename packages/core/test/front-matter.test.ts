import t from 'tap';
import { normaliseConfig } from '../src/config.js';
import {
  agentSettings, checkFrontMatter, FrontMatterError, parsePrompt, prSettings, splitPrompt, type FrontMatterPolicy,
} from '../src/front-matter.js';

/** The operator's limits every row is checked against. */
const policy: FrontMatterPolicy & { pr_labels: string[] } = {
  runner_model: 'gpt-5-codex',
  allowed_models: ['gpt-5-codex-mini'],
  runner_sandbox: 'workspace-write',
  runner_timeout_seconds: 3600,
  pr_draft: false,
  pr_labels: ['valet'],
  runner_max_tokens: 100000,
};

type Row = { good: [unknown, unknown][]; bad: [unknown, RegExp][] };

/** Every front-matter key: values kept (and what they become), values refused (and why). */
const TABLE: Record<string, Row> = {
  title: {
    good: [['Fix the login page', 'Fix the login page'], ['  padded  ', 'padded'], ['Zoë ünïcödé', 'Zoë ünïcödé']],
    bad: [[42, /title: got 42, expected a single line/], ['', /single line/], ['two\nlines', /single line/], ['\x1b]0;pwned\x07', /single line/], ['x'.repeat(251), /1 to 250/]],
  },
  draft: {
    good: [[true, true], [false, false]],
    bad: [['yes', /draft: got "yes", expected true or false/], [1, /true or false/]],
  },
  labels: {
    good: [[['bug', 'ui'], ['bug', 'ui']], ['bug, ui', ['bug', 'ui']], [['a', 'a'], ['a']], [[], []]],
    bad: [[[1], /labels\[0\]: got 1, expected a label/], [[''], /labels\[0\].*a label/], [['x'.repeat(51)], /a label/], [['a\nb'], /a label/], [{ a: 1 }, /a list of at most 20/], [Array.from({ length: 21 }, (_, i) => `l${i}`), /at most 20/]],
  },
  model: {
    good: [['gpt-5-codex', 'gpt-5-codex'], ['gpt-5-codex-mini', 'gpt-5-codex-mini']],
    bad: [
      ['--dangerously-bypass-approvals-and-sandbox', /model: got "--dangerously.*expected a model name/],
      ['o3', /one of the models the operator allows \(gpt-5-codex, gpt-5-codex-mini; watcher.allowed_models\)/],
      [['gpt-5-codex'], /a model name/],
      ['a b', /a model name/],
    ],
  },
  sandbox: {
    good: [['read-only', 'read-only'], ['workspace-write', 'workspace-write']],
    bad: [
      ['danger-full-access', /sandbox: got "danger-full-access", expected read-only or workspace-write: watcher.runner_sandbox is workspace-write/],
      ['none', /one of read-only, workspace-write, danger-full-access/],
      [true, /one of/],
    ],
  },
  timeout: {
    good: [[60, 60], [0.5, 0.5], [3600, 3600]],
    bad: [[999999999, /timeout: got 999999999, expected at most 3600 seconds/], [0, /> 0/], [-1, /> 0/], ['60', /a number of seconds/], [3601, /at most 3600/]],
  },
  max_tokens: {
    good: [[1, 1], [5000, 5000], [100000, 100000]],
    bad: [[100001, /max_tokens: got 100001, expected at most 100000 tokens \(watcher.runner_max_tokens; a prompt may only lower it\)/], [0, /a whole number of tokens > 0/], [1.5, /whole number/], ['5000', /whole number/], [-3, /> 0/]],
  },
};

t.test('every key is checked by its own value and the operator\'s limit', async (t) => {
  for (const [key, row] of Object.entries(TABLE)) {
    for (const [value, kept] of row.good) {
      t.same(checkFrontMatter({ [key]: value }, policy), { [key]: kept }, `${key}: ${JSON.stringify(value)} kept`);
    }
    for (const [value, re] of row.bad) {
      let error: unknown;
      try {
        checkFrontMatter({ [key]: value }, policy);
      } catch (err) {
        error = err;
      }
      t.ok(error instanceof FrontMatterError, `${key}: ${JSON.stringify(value)} refused`);
      t.match((error as Error).message, re, `${key}: ${JSON.stringify(value)}: says why`);
      t.notMatch((error as Error).message, /\n/, 'one line');
      t.match(error, { code: 'bad_front_matter', retryable: false });
    }
  }
});

t.test('unknown keys and other shapes are refused', async (t) => {
  t.throws(() => checkFrontMatter({ sandox: 'read-only' }, policy), { message: /front matter "sandox" is not a known key \(known: title, draft/ });
  t.throws(() => checkFrontMatter(['a'], policy), { message: /must be a mapping/ });
  t.throws(() => checkFrontMatter('x', policy), { message: /must be a mapping/ });
  t.throws(() => parsePrompt('---\ntitle: [unclosed\n---\nbody\n', policy), { code: 'bad_front_matter', message: /not valid YAML/ });
});

t.test('a prompt may narrow what the operator allows, never widen it', async (t) => {
  const strict = { ...policy, runner_sandbox: 'read-only' as const, runner_timeout_seconds: 60, pr_draft: true };
  t.throws(() => checkFrontMatter({ sandbox: 'workspace-write' }, strict), { message: /expected read-only: watcher.runner_sandbox is read-only/ });
  t.throws(() => checkFrontMatter({ timeout: 61 }, strict), { message: /at most 60 seconds/ });
  t.throws(() => checkFrontMatter({ draft: false }, strict), { message: /watcher.pr_draft/ });
  t.same(checkFrontMatter({ draft: true, timeout: 30, sandbox: 'read-only' }, strict), { draft: true, timeout: 30, sandbox: 'read-only' });
  const wide = { ...policy, runner_sandbox: 'danger-full-access' as const };
  t.same(checkFrontMatter({ sandbox: 'read-only' }, wide), { sandbox: 'read-only' }, 'stricter than the operator: fine');
  t.same(checkFrontMatter({ sandbox: 'danger-full-access' }, wide), { sandbox: 'danger-full-access' }, 'as wide as the operator: fine');
});

t.test('without allowed_models only runner_model may be chosen', async (t) => {
  const { config } = normaliseConfig({}, 'c.yaml', '/');
  t.same(checkFrontMatter({ model: 'gpt-5.1-codex-mini' }, config.watcher), { model: 'gpt-5.1-codex-mini' });
  t.throws(() => checkFrontMatter({ model: 'gpt-5' }, config.watcher), { message: /allows \(gpt-5\.1-codex-mini;/ });
});

t.test('the agent and the PR get the operator\'s values unless the prompt narrows them', async (t) => {
  t.same(agentSettings({}, policy), { model: 'gpt-5-codex', sandbox: 'workspace-write', timeoutSeconds: 3600, maxTokens: 100000 });
  t.same(agentSettings(undefined, policy), { model: 'gpt-5-codex', sandbox: 'workspace-write', timeoutSeconds: 3600, maxTokens: 100000 });
  t.same(agentSettings({ model: 'gpt-5-codex-mini', sandbox: 'read-only', timeout: 5, max_tokens: 20 }, policy), { model: 'gpt-5-codex-mini', sandbox: 'read-only', timeoutSeconds: 5, maxTokens: 20 });
  // Without an operator's cap a prompt may set its own; with neither there is none.
  t.same(agentSettings({ max_tokens: 10_000_000 }, { ...policy, runner_max_tokens: 0 }).maxTokens, 10_000_000);
  t.equal(agentSettings({}, { ...policy, runner_max_tokens: 0 }).maxTokens, 0);
  // A forged record's front matter is checked again: it widens nothing.
  t.throws(() => agentSettings({ sandbox: 'danger-full-access' }, policy), FrontMatterError);
  t.throws(() => agentSettings({ model: '--dangerously-bypass-approvals-and-sandbox' }, policy), FrontMatterError);
  t.throws(() => agentSettings({ extra_args: ['--yolo'] }, policy), FrontMatterError);
  t.same(prSettings({}, policy), { draft: false, labels: ['valet'] });
  t.same(prSettings({ draft: true, labels: ['bug', 'valet'] }, policy), { draft: true, labels: ['valet', 'bug'] }, 'the operator\'s labels stay');
});

t.test('splitPrompt separates the front matter without reading it', async (t) => {
  t.same(splitPrompt('---\nnot: [valid\n---\nbody\n'), { yaml: 'not: [valid', body: 'body\n' });
  t.same(splitPrompt('\uFEFFjust text\n'), { yaml: undefined, body: 'just text\n' });
  t.same(parsePrompt('---\n---\nbody\n', policy), { front_matter: {}, body: 'body\n' }, 'empty front matter');
});
