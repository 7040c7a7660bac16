import t from 'tap';
import { agentBranchRunId, followUpReference, parsePrompt } from '../src/index.js';

const RUN = '20261130-070000-000-aaaaaaaa';

t.test('followUpReference: a run id or a PR URL', async (t) => {
  t.same(followUpReference(RUN), { kind: 'run_id', value: RUN });
  t.same(followUpReference(' https://github.com/acme/widget/pull/7/ '), { kind: 'pr_url', value: 'https://github.com/acme/widget/pull/7' });
  for (const bad of ['', 'latest', 'https://github.com/acme/widget/issues/7', `../${RUN}`, 'https://github.com/acme/pull/7']) {
    t.equal(followUpReference(bad), undefined, JSON.stringify(bad));
  }
});

t.test('agentBranchRunId: the run id an agent branch carries', async (t) => {
  t.equal(agentBranchRunId(`codex/add-a-${RUN}`, 'codex/'), RUN);
  t.equal(agentBranchRunId(`feature/add-a-${RUN}`, 'codex/'), undefined, 'not under the prefix');
  t.equal(agentBranchRunId('codex/add-a', 'codex/'), undefined, 'no run id');
  t.equal(agentBranchRunId(`add-a-${RUN}`, ''), undefined, 'no prefix: no agent branches to tell apart');
});

t.test('front matter follow_up: checked like every key', async (t) => {
  t.same(parsePrompt(`---\nfollow_up: ${RUN}\n---\nGo on.\n`).front_matter, { follow_up: RUN });
  t.throws(() => parsePrompt('---\nfollow_up: the last one\n---\nGo on.\n'), {
    code: 'bad_front_matter',
    message: /follow_up: got "the last one", expected a run id .* or the URL of a pull request/,
  });
  t.throws(() => parsePrompt('---\nfollow_up: 7\n---\nGo on.\n'), { code: 'bad_front_matter' });
});
