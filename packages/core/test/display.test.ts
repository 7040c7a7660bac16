import t from 'tap';
import { escapeForDisplay } from '../src/display.js';

const TABLE: [string, string, string][] = [
  ['plain ASCII', 'repo/main/fix-login.prompt.md', 'repo/main/fix-login.prompt.md'],
  ['letters beyond ASCII are kept', 'Zoë/ünïcödé ✓', 'Zoë/ünïcödé ✓'],
  ['newline, CR, tab by name', 'a\nb\rc\td', 'a\\nb\\rc\\td'],
  ['ESC sequences: title and clear screen', '\x1b]0;pwned\x07\x1b[2J', '\\x1b]0;pwned\\x07\\x1b[2J'],
  ['NUL and DEL', 'a\0b\x7f', 'a\\x00b\\x7f'],
  ['C1 controls (CSI 0x9b)', 'a\u009b2Jb\u0085', 'a\\x9b2Jb\\x85'],
  ['bidi override and line separators', 'evil\u202etxt.md\u2028x\u2066', 'evil\\u{202e}txt.md\\u{2028}x\\u{2066}'],
];

t.test('escapeForDisplay: what a person sees for each kind of character', async (t) => {
  for (const [why, input, shown] of TABLE) t.equal(escapeForDisplay(input), shown, why);
});
