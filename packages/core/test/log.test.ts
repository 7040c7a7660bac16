import t from 'tap';
import { PassThrough } from 'node:stream';
import { createLogger, prepareColour } from '../src/log.js';

function sink(isTTY: boolean) {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean };
  s.isTTY = isTTY;
  let text = '';
  s.on('data', (c) => (text += c));
  return { s, text: () => text };
}

t.test('prefixes every line with the tool name', async (t) => {
  const { s, text } = sink(false);
  const log = createLogger('pv-claim', { stream: s, env: {} });
  log.info('claimed %s', 'x');
  log.error('two\nlines');
  t.equal(text(), 'pv-claim: claimed x\npv-claim: error: two\\nlines\n', 'one call, one line: a line break is shown escaped');
});

t.test('names from outside cannot drive the terminal or forge a journal entry', async (t) => {
  const { s, text } = sink(false);
  const log = createLogger('pv-watcher', { stream: s, env: { JOURNAL_STREAM: '8:1234' } });
  const folder = 'repo/main\n<3>pv-watcher: error: forged';
  const prompt = '\x1b]0;pwned\x07\x1b[2Jx.prompt.md';
  log.info(`claimed ${folder}/${prompt}`);
  log.info('claimed %s', prompt);
  t.equal(text(), [
    '<6>pv-watcher: claimed repo/main\\n<3>pv-watcher: error: forged/\\x1b]0;pwned\\x07\\x1b[2Jx.prompt.md',
    '<6>pv-watcher: claimed \\x1b]0;pwned\\x07\\x1b[2Jx.prompt.md',
    '',
  ].join('\n'));
  t.notMatch(text(), /\x1b|\x07/, 'no raw escape reaches the stream');
});

t.test('under journald every line carries its syslog priority', async (t) => {
  const { s, text } = sink(false);
  const log = createLogger('pv-watcher', { stream: s, env: { JOURNAL_STREAM: '8:1234' } });
  log.error('e');
  log.warn('w');
  log.notice('n');
  log.info('i');
  log.debug('d');
  t.equal(text(), '<3>pv-watcher: error: e\n<4>pv-watcher: warn: w\n<5>pv-watcher: n\n<6>pv-watcher: i\n');
});

t.test('colour only on a TTY, and NO_COLOR wins', async (t) => {
  const tty = sink(true);
  await prepareColour(tty.s, {});
  createLogger('pv-x', { stream: tty.s, env: {} }).error('boom');
  t.match(tty.text(), /\x1b\[31m/, 'red on a TTY');
  const nocolor = sink(true);
  createLogger('pv-x', { stream: nocolor.s, env: { NO_COLOR: '' } }).error('boom');
  t.notMatch(nocolor.text(), /\x1b\[/, 'NO_COLOR, even empty, turns colour off');
  const pipe = sink(false);
  createLogger('pv-x', { stream: pipe.s, env: {} }).error('boom');
  t.notMatch(pipe.text(), /\x1b\[/, 'no colour into a pipe');
});

t.test('PV_LOG_LEVEL=debug shows debug lines', async (t) => {
  const { s, text } = sink(false);
  createLogger('pv-x', { stream: s, env: { PV_LOG_LEVEL: 'debug' } }).debug('detail');
  t.equal(text(), 'pv-x: detail\n');
});
