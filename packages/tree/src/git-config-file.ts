/**
 * A small, strict reader of one git config file (git-config(1) "CONFIGURATION
 * FILE"), for the few keys pv-tree's in-process listing needs. It follows git's
 * own parser (config.c: get_base_var, get_value, parse_value) for what it
 * accepts, and refuses the rest instead of guessing: a line continued with a
 * backslash, the deprecated `[section.sub]` header, a key on the header's line,
 * a CR, a NUL or a byte-order mark. A refusal sends the caller to git, so a
 * file this parser reads differently from git can only cost a git process.
 */
export interface ConfigEntry {
  /** lower-cased, as git compares it */
  section: string;
  /** case kept, as git compares it; undefined for `[section]` */
  subsection: string | undefined;
  /** lower-cased */
  key: string;
  /** null for a key without `=` (a boolean true) */
  value: string | null;
}

export type ParsedConfig = { ok: true; entries: ConfigEntry[] } | { ok: false; reason: string };

const SECTION_RE = /^\[([A-Za-z0-9-]+)\]/;
const SUBSECTION_RE = /^\[([A-Za-z0-9-]+)[ \t]+"((?:[^"\\\n]|\\[^\n])*)"\]/;
const KEY_RE = /^([A-Za-z][A-Za-z0-9-]*)[ \t]*/;

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\v' || c === '\f';
}

/** git's parse_value on the rest of one line: quotes, escapes, comments, whitespace runs. */
function parseValue(text: string): { ok: true; value: string } | { ok: false; reason: string } {
  let value = '';
  let quoted = false;
  let pendingSpaces = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text[i]!;
    if (isSpace(c) && !quoted) {
      if (value.length > 0) pendingSpaces++;
      continue;
    }
    if (!quoted && (c === ';' || c === '#')) break;
    value += ' '.repeat(pendingSpaces);
    pendingSpaces = 0;
    if (c === '\\') {
      const next = text[++i];
      if (next === undefined) return { ok: false, reason: 'a value continued on the next line (backslash at the end)' };
      if (next === 't') c = '\t';
      else if (next === 'b') c = '\b';
      else if (next === 'n') c = '\n';
      else if (next === '\\' || next === '"') c = next;
      else return { ok: false, reason: `an unknown escape \\${next} in a value` };
      value += c;
      continue;
    }
    if (c === '"') {
      quoted = !quoted;
      continue;
    }
    value += c;
  }
  if (quoted) return { ok: false, reason: 'a quote left open at the end of a line' };
  return { ok: true, value };
}

export function parseGitConfig(text: string): ParsedConfig {
  if (text.startsWith('\uFEFF')) return { ok: false, reason: 'a byte-order mark' };
  if (text.includes('\r') || text.includes('\0')) return { ok: false, reason: 'a CR or NUL character' };
  const entries: ConfigEntry[] = [];
  let section: string | undefined;
  let subsection: string | undefined;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/^[ \t\v\f]+/, '');
    const where = `line ${n + 1}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      const sub = SUBSECTION_RE.exec(line);
      const plain = sub ? undefined : SECTION_RE.exec(line);
      const header = sub ?? plain;
      if (!header) return { ok: false, reason: `${where}: a section header this reader does not take` };
      const rest = line.slice(header[0].length).replace(/^[ \t]+/, '');
      if (rest !== '' && !rest.startsWith('#') && !rest.startsWith(';')) return { ok: false, reason: `${where}: text after the section header` };
      section = header[1]!.toLowerCase();
      subsection = sub ? sub[2]!.replace(/\\(.)/g, '$1') : undefined;
      continue;
    }
    const key = KEY_RE.exec(line);
    if (!key) return { ok: false, reason: `${where}: not a key, a section or a comment` };
    if (section === undefined) return { ok: false, reason: `${where}: a key before any section` };
    const rest = line.slice(key[0].length);
    let value: string | null = null;
    if (rest !== '') {
      if (!rest.startsWith('=')) return { ok: false, reason: `${where}: a key followed by neither "=" nor the end of the line` };
      const parsed = parseValue(rest.slice(1));
      if (!parsed.ok) return { ok: false, reason: `${where}: ${parsed.reason}` };
      value = parsed.value;
    }
    entries.push({ section, subsection, key: key[1]!.toLowerCase(), value });
  }
  return { ok: true, entries };
}
