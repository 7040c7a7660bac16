import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorTurn, execTurn, messageTurn, slowTurn, stallTurn, startFakeModel, writeCodexHome } from '../src/index.js';

async function post(url: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/responses`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...(signal ? { signal } : {}) });
  return { status: res.status, text: await res.text() };
}

t.test('turns are served in order, then a plain final message for anything unscripted', async (t) => {
  const model = await startFakeModel([execTurn('echo hi', { workdir: '/w' }), errorTurn(400, '{"error":{"message":"nope"}}')]);
  t.teardown(() => model.close());
  const first = await post(model.baseUrl, { input: [] });
  t.equal(first.status, 200);
  t.match(first.text, /"name":"exec_command"/);
  t.match(first.text, /\\"cmd\\":\\"echo hi\\"/);
  t.match(first.text, /event: response.completed/);
  const second = await post(model.baseUrl, { input: [{ type: 'function_call_output', call_id: 'call_1', output: 'hi\n' }] });
  t.equal(second.status, 400);
  t.equal(second.text, '{"error":{"message":"nope"}}');
  const third = await post(model.baseUrl, {});
  t.match(third.text, /"text":"done"/);
  t.equal(model.unscripted, 1);
  t.equal(model.requests.length, 3);
  t.same(model.toolOutputs(), ['hi\n']);
});

t.test('a stall never answers; close() ends it', async (t) => {
  const model = await startFakeModel([stallTurn()]);
  const pending = post(model.baseUrl, {}).then(() => 'answered', () => 'cut off');
  await model.waitForRequests(1);
  const raced = await Promise.race([pending, new Promise((r) => setTimeout(() => r('still waiting'), 300))]);
  t.equal(raced, 'still waiting');
  await model.close();
  t.equal(await pending, 'cut off');
});

t.test('a slow turn streams its chunks as deltas, then the whole message', async (t) => {
  const model = await startFakeModel([slowTurn(['a', 'b', 'c'], 20)]);
  t.teardown(() => model.close());
  const { text } = await post(model.baseUrl, {});
  t.equal(text.match(/response.output_text.delta/g)?.length, 6, 'three delta events (event and data lines)');
  t.match(text, /"text":"abc"/);
});

t.test('writeCodexHome points codex at the fake', async (t) => {
  const model = await startFakeModel([messageTurn('x')]);
  t.teardown(() => model.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codex-home-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const home = await writeCodexHome(dir, model, { envKey: 'K' });
  t.same(home.env, { CODEX_HOME: dir, K: 'test-key' });
  const toml = fs.readFileSync(path.join(dir, 'config.toml'), 'utf8');
  t.match(toml, `base_url = "${model.baseUrl}"`);
  t.match(toml, 'wire_api = "responses"');
  t.match(toml, 'env_key = "K"');
});
