import t from 'tap';
import { agentErrors, isTransientFailure, usageFromHumanOutput, UsageCounter } from '../src/outcome.js';

t.test('codex error lines, human and JSON, deduplicated', async (t) => {
  const human = 'exec\nls\nERROR: stream disconnected before completion\nERROR: stream disconnected before completion\n';
  t.same(agentErrors(human), ['stream disconnected before completion']);
  const json = '{"type":"error","message":"boom"}\n{"type":"turn.failed","error":{"message":"boom2"}}\n{"type":"item.completed"}\n';
  t.same(agentErrors(json), ['boom', 'boom2']);
});

t.test('which failures are worth retrying', async (t) => {
  t.ok(isTransientFailure(['exceeded retry limit, last status: 429 Too Many Requests']));
  t.ok(isTransientFailure(['We’re currently experiencing high demand, which may cause temporary errors.']));
  t.ok(isTransientFailure(['stream disconnected before completion: Transport error: network error']));
  t.ok(isTransientFailure(['unexpected status 503 Service Unavailable']));
  t.notOk(isTransientFailure(['{"error":{"message":"model does not exist","type":"invalid_request_error"}}']));
  t.notOk(isTransientFailure([]), 'no error line: not retryable');
});

t.test('token usage', async (t) => {
  const c = new UsageCounter();
  c.addEventLine('{"type":"turn.completed","usage":{"input_tokens":3,"output_tokens":2}}');
  c.addEventLine('{"type":"turn.completed","usage":{"input_tokens":4,"output_tokens":1}}');
  c.addEventLine('not json');
  t.same(c.result(), { input_tokens: 7, output_tokens: 3, total_tokens: 10 });
  t.equal(new UsageCounter().result(), undefined);
  t.same(usageFromHumanOutput('codex\ndone\ntokens used\n1,234\n'), { total_tokens: 1234 });
  t.equal(usageFromHumanOutput('nothing'), undefined);
});
