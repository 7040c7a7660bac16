import t from 'tap';
import { PassThrough, Readable } from 'node:stream';
import { formatRecord, readRecords, SCHEMA_VERSION, writeRecord, type PvRecord } from '../src/records.js';
import { defineTool, mapRecords } from '../src/cli.js';
import { StepError } from '../src/records.js';

async function collect(text: string): Promise<PvRecord[]> {
  const out: PvRecord[] = [];
  for await (const r of readRecords(Readable.from([text]))) out.push(r);
  return out;
}

t.test('a malformed line becomes an error record and the stream goes on', async (t) => {
  const recs = await collect('{"v":1,"run_id":"a"}\nnot json\n[1,2]\n\n{"v":1,"run_id":"b"}\n');
  t.equal(recs.length, 4, 'blank line skipped, bad lines kept as records');
  t.equal(recs[0]!.run_id, 'a');
  t.match(recs[1], { error: { step: 'input', code: 'malformed_record', retryable: false }, input: { line: 2, text: 'not json' } });
  t.match(recs[2]!.error!.message, /not an object/);
  t.equal(recs[3]!.run_id, 'b');
});

t.test('records without a version get the current one', async (t) => {
  const [r] = await collect('{"run_id":"x"}\n');
  t.equal(r!.v, SCHEMA_VERSION);
  t.equal(JSON.parse(formatRecord({ v: 1 })).v, 1);
});

t.test('a line up to the cap is read whole, across many chunks', async (t) => {
  const big = 'x'.repeat(8 * 1024 * 1024);
  // Feed it in many small chunks, as a pipe would.
  const text = JSON.stringify({ v: 1, blob: big }) + '\n';
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += 65536) chunks.push(text.slice(i, i + 65536));
  const recs: PvRecord[] = [];
  for await (const r of readRecords(Readable.from(chunks), { maxLineBytes: text.length - 1 })) recs.push(r);
  t.equal(recs.length, 1);
  t.equal((recs[0]!.blob as string).length, big.length);
});

t.test('a line over the cap is one record_too_large error record; the next line is read', async (t) => {
  const cap = 4096;
  const over = JSON.stringify({ v: 1, pad: 'y'.repeat(cap) });
  const exact = JSON.stringify({ v: 1, run_id: 'e', pad: 'z'.repeat(cap - 29) });
  t.equal(Buffer.byteLength(exact), cap, 'the second line is exactly at the cap');
  const text = `${over}\n${exact}\n{"v":1,"run_id":"after"}\r\n${'q'.repeat(cap + 1)}`;
  const chunks: Buffer[] = [];
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 1000) chunks.push(bytes.subarray(i, i + 1000));
  const recs: PvRecord[] = [];
  for await (const r of readRecords(Readable.from(chunks), { maxLineBytes: cap })) recs.push(r);
  t.equal(recs.length, 4);
  t.match(recs[0], {
    input: { line: 1, bytes: Buffer.byteLength(over) },
    error: { step: 'input', code: 'record_too_large', retryable: false, message: `line 1 is ${Buffer.byteLength(over)} bytes, more than limits.max_record_bytes (4096); skipped unread` },
  });
  t.equal(recs[1]!.run_id, 'e', 'a line of exactly the cap is read');
  t.equal(recs[2]!.run_id, 'after');
  t.match(recs[3], { input: { line: 4, bytes: cap + 1 }, error: { code: 'record_too_large' } }, 'an unterminated last line is capped too');
});

t.test('a multi-byte character split across chunks survives', async (t) => {
  const bytes = Buffer.from('{"v":1,"name":"Zoë ✓"}\n');
  const recs: PvRecord[] = [];
  for await (const r of readRecords(Readable.from([...bytes].map((b) => Buffer.from([b]))))) recs.push(r);
  t.equal(recs[0]!.name, 'Zoë ✓');
});

t.test('one compact object per line', async (t) => {
  const s = formatRecord({ v: 1, run_id: 'a', nested: { b: [1, 2] } });
  t.equal(s, '{"v":1,"run_id":"a","nested":{"b":[1,2]}}\n');
});

t.test('writeRecord waits for a slow reader', async (t) => {
  const out = new PassThrough({ highWaterMark: 16 });
  let got = '';
  const done = writeRecord(out, { v: 1, pad: 'y'.repeat(100) });
  setTimeout(() => out.on('data', (c) => (got += c)), 20);
  await done;
  t.match(got, /"pad"/);
});

t.test('mapRecords: pass-through, errors per record, unknown fields kept', async (t) => {
  const input = [
    { v: 1, run_id: 'ok', future_field: { keep: true } },
    { v: 1, run_id: 'failed-before', error: { step: 'claim', code: 'x', message: 'm', retryable: false } },
    { v: 1, run_id: 'step-error' },
    { v: 1, run_id: 'bug' },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const seen: string[] = [];
  const main = defineTool({
    name: 'pv-example',
    summary: 'example',
    usage: 'pv-example',
    epilogue: '',
    run: (ctx) =>
      mapRecords(ctx, 'example', async (rec) => {
        seen.push(rec.run_id!);
        if (rec.run_id === 'step-error') throw new StepError('thing_missing', 'the thing is missing', { retryable: true });
        if (rec.run_id === 'bug') throw new TypeError('oops');
        return { ...rec, example: { done: true } };
      }),
  });
  const code = await main([], { stdin: Readable.from([input]), stdout, stderr, env: {} });
  t.equal(code, 0, 'the tool ran: exit 0 even though records failed');
  const recs = out.trim().split('\n').map((l) => JSON.parse(l));
  t.same(seen, ['ok', 'step-error', 'bug'], 'a record that already failed is not handled again');
  t.same(recs.map((r) => r.run_id), ['ok', 'failed-before', 'step-error', 'bug'], 'order kept, nothing dropped');
  t.same(recs[0].future_field, { keep: true }, 'fields the tool does not own pass through');
  t.same(recs[0].example, { done: true });
  t.same(recs[1].error, { step: 'claim', code: 'x', message: 'm', retryable: false }, 'untouched');
  t.same(recs[2].error, { step: 'example', code: 'thing_missing', message: 'the thing is missing', retryable: true });
  t.match(recs[3].error, { step: 'example', code: 'internal', retryable: false });
  t.match(err, /pv-example: error: internal error: TypeError: oops/);
});

t.test('a step that handles failed records and fails itself keeps the first error as the cause', async (t) => {
  const first = { step: 'clone', code: 'git_failed', message: 'remote hung up', retryable: true };
  const input = JSON.stringify({ v: 1, run_id: 'r', error: first }) + '\n';
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c) => (out += c));
  const main = defineTool({
    name: 'pv-example',
    summary: 'example',
    usage: 'pv-example',
    epilogue: '',
    run: (ctx) =>
      mapRecords(ctx, 'settle', async () => {
        throw new StepError('disk_full', 'cannot move the prompt');
      }, { includeFailed: true }),
  });
  t.equal(await main([], { stdin: Readable.from([input]), stdout, stderr: new PassThrough(), env: {} }), 0);
  const rec = JSON.parse(out);
  t.same(rec.error, { step: 'settle', code: 'disk_full', message: 'cannot move the prompt', retryable: false, cause: first });
});
