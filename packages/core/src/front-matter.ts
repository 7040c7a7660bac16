import YAML from 'yaml';
import type { FrontMatter } from './records.js';

/**
 * Optional YAML front matter at the top of a prompt:
 *
 *     ---
 *     title: Fix the login page
 *     draft: true
 *     labels: [bug, ui]
 *     model: gpt-5-codex
 *     sandbox: workspace-write
 *     timeout: 1800
 *     ---
 *     The prompt text…
 */
export interface ParsedPrompt {
  front_matter: FrontMatter;
  /** the prompt text without the front matter */
  body: string;
}

export class FrontMatterError extends Error {
  readonly code = 'bad_front_matter';
  constructor(message: string) {
    super(message);
    this.name = 'FrontMatterError';
  }
}

const FENCE_RE = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;

const KNOWN: Record<string, (v: unknown) => boolean> = {
  title: (v) => typeof v === 'string' && v.trim() !== '',
  draft: (v) => typeof v === 'boolean',
  labels: (v) => Array.isArray(v) && v.every((l) => typeof l === 'string' && l.trim() !== ''),
  model: (v) => typeof v === 'string' && /^[A-Za-z0-9._:/-]+$/.test(v),
  sandbox: (v) => v === 'read-only' || v === 'workspace-write' || v === 'danger-full-access',
  timeout: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
};

const EXPECTED: Record<string, string> = {
  title: 'a non-empty string',
  draft: 'true or false',
  labels: 'a list of non-empty strings',
  model: 'a model name (letters, digits, . _ : / -)',
  sandbox: 'read-only, workspace-write or danger-full-access',
  timeout: 'a number of seconds > 0',
};

export function parsePrompt(text: string): ParsedPrompt {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const m = FENCE_RE.exec(src);
  if (!m) return { front_matter: {}, body: src };
  let data: unknown;
  try {
    data = YAML.parse(m[1]!);
  } catch (err) {
    throw new FrontMatterError(`front matter is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new FrontMatterError('front matter must be a mapping of keys (title, draft, labels, model, sandbox, timeout)');
  }
  const fm = data as Record<string, unknown>;
  if (typeof fm.labels === 'string') fm.labels = fm.labels.split(',').map((s) => s.trim()).filter(Boolean);
  for (const [key, ok] of Object.entries(KNOWN)) {
    if (fm[key] !== undefined && !ok(fm[key])) {
      throw new FrontMatterError(`front matter ${key}: got ${JSON.stringify(fm[key])}, expected ${EXPECTED[key]}`);
    }
  }
  return { front_matter: fm as FrontMatter, body: src.slice(m[0].length) };
}

/** The prompt's first Markdown heading, if any. */
export function firstHeading(body: string): string | undefined {
  const m = /^\s{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/m.exec(body);
  return m?.[1]?.trim() || undefined;
}
