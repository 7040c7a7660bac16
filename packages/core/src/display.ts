/**
 * Names shown to a person or written to the journal come from outside (a
 * prompt's file name, a folder someone made, a record): shown raw, an escape
 * sequence in one sets the terminal's title or clears the screen, and a line
 * break forges a second journal entry. Every such name goes through
 * `escapeForDisplay`: C0 and C1 controls and DEL as `\xNN` (`\n`, `\r`, `\t`
 * by their usual names), and the Unicode characters that reorder or break
 * lines (bidi controls, U+2028/9) as `\u{NNNN}`. Printable text, including
 * non-ASCII letters, is left as it is.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_RE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function escapeForDisplay(text: string): string {
  return text.replace(UNSAFE_RE, (ch) => {
    const named = NAMED[ch];
    if (named) return named;
    const code = ch.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
