import YAML from 'yaml';
import { SANDBOX_LEVELS, type Sandbox, type WatcherConfig } from './config.js';
import type { FrontMatter } from './records.js';
import { labelName, modelName, singleLine } from './value-checks.js';
import { PvError } from './errors.js';
import { followUpReference } from './follow-up.js';

/**
 * Optional YAML front matter at the top of a prompt:
 *
 *     ---
 *     title: Fix the login page
 *     draft: true
 *     labels: [bug, ui]
 *     model: gpt-5-codex
 *     sandbox: read-only
 *     timeout: 1800
 *     max_tokens: 200000
 *     follow_up: 20261126-120925-978-67pwhcv7   # or a PR URL: continue that work
 *     ---
 *     The prompt text…
 *
 * The operator's limits win: front matter may narrow what the configuration
 * allows (a shorter timeout, a lower token cap, a stricter sandbox, a model from
 * watcher.allowed_models, a draft PR, more labels), never widen it. Every
 * value is checked like a configuration value; a refused one fails the
 * prompt with code `bad_front_matter`. pv-resolve checks it once and carries
 * the result in `target.front_matter`; later steps re-check that (a record
 * may be forged) with the same `checkFrontMatter`, which is cheap.
 */
export interface ParsedPrompt {
  front_matter: FrontMatter;
  /** the prompt text without the front matter */
  body: string;
}

/** What front matter is checked against: the operator's limits. */
export type FrontMatterPolicy = Pick<
  WatcherConfig,
  'runner_model' | 'allowed_models' | 'runner_sandbox' | 'runner_timeout_seconds' | 'pr_draft'
> & Partial<Pick<WatcherConfig, 'runner_max_tokens'>>;

/** A prompt's front matter that cannot be used. Fails that prompt, never retried. */
export class FrontMatterError extends PvError {
  constructor(message: string, cause?: unknown) {
    super('bad_front_matter', message, cause === undefined ? {} : { cause });
  }
}

const FENCE_RE = /^---[ \t]*\r?\n(?:([\s\S]*?)\r?\n)?---[ \t]*(?:\r?\n|$)/;
const KEYS = ['title', 'draft', 'labels', 'model', 'sandbox', 'timeout', 'max_tokens', 'follow_up'] as const;
const MAX_TITLE = 250;
const MAX_LABELS = 20;

/** The front matter's YAML text (undefined when there is none) and the body after it; nothing is parsed. */
export function splitPrompt(text: string): { yaml: string | undefined; body: string } {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const m = FENCE_RE.exec(src);
  return m ? { yaml: m[1] ?? '', body: src.slice(m[0].length) } : { yaml: undefined, body: src };
}

/**
 * Split, parse and check a prompt's front matter. Without a policy only the
 * shape of each value is checked (for a view that shows a title); every
 * step that acts on a prompt passes the operator's policy.
 */
export function parsePrompt(text: string, policy?: FrontMatterPolicy): ParsedPrompt {
  const { yaml, body } = splitPrompt(text);
  if (yaml === undefined) return { front_matter: {}, body };
  let data: unknown;
  try {
    data = YAML.parse(yaml);
  } catch (err) {
    throw new FrontMatterError(`front matter is not valid YAML: ${(err as Error).message.split('\n')[0]}`, err);
  }
  return { front_matter: checkFrontMatter(data ?? {}, policy), body };
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function refuse(key: string, got: unknown, expected: string): never {
  throw new FrontMatterError(`front matter ${key}: got ${show(got)}, expected ${expected}`);
}

/** The models a prompt may choose: runner_model and watcher.allowed_models. */
export function allowedModels(policy: Pick<FrontMatterPolicy, 'runner_model' | 'allowed_models'>): string[] {
  return [...new Set([policy.runner_model, ...policy.allowed_models])];
}

/**
 * Check front matter (parsed YAML, or a record's `target.front_matter`) and
 * return only the known keys, each a value the operator's policy permits.
 * Unknown keys are refused: a misspelt `sandox: read-only` would otherwise
 * silently run with the wider default.
 */
export function checkFrontMatter(raw: unknown, policy?: FrontMatterPolicy): FrontMatter {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FrontMatterError(`front matter must be a mapping of keys (${KEYS.join(', ')}), got ${show(raw)}`);
  }
  const given = raw as Record<string, unknown>;
  const unknown = Object.keys(given).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new FrontMatterError(`front matter ${show(unknown[0])} is not a known key (known: ${KEYS.join(', ')})`);
  }
  const out: FrontMatter = {};

  if (given.title !== undefined) {
    const v = given.title;
    if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_TITLE || singleLine(v)) {
      refuse('title', v, `a single line of 1 to ${MAX_TITLE} characters`);
    }
    out.title = v.trim();
  }

  if (given.draft !== undefined) {
    const v = given.draft;
    if (typeof v !== 'boolean') refuse('draft', v, 'true or false');
    if (policy?.pr_draft && !v) refuse('draft', v, 'true: watcher.pr_draft makes every pull request a draft');
    out.draft = v;
  }

  if (given.labels !== undefined) {
    let v = given.labels;
    if (typeof v === 'string') v = v.split(',').map((s) => s.trim()).filter(Boolean);
    if (!Array.isArray(v) || v.length > MAX_LABELS) refuse('labels', given.labels, `a list of at most ${MAX_LABELS} labels`);
    const labels = v as unknown[];
    labels.forEach((l, i) => {
      const problem = typeof l === 'string' ? labelName(l) : 'a label (a string)';
      if (problem) refuse(`labels[${i}]`, l, problem);
    });
    out.labels = [...new Set(labels as string[])];
  }

  if (given.model !== undefined) {
    const v = given.model;
    const problem = typeof v === 'string' ? modelName(v) : 'a model name (a string)';
    if (problem) refuse('model', v, problem);
    if (policy) {
      const allowed = allowedModels(policy);
      if (!allowed.includes(v as string)) refuse('model', v, `one of the models the operator allows (${allowed.join(', ')}; watcher.allowed_models)`);
    }
    out.model = v as string;
  }

  if (given.sandbox !== undefined) {
    const v = given.sandbox;
    const level = SANDBOX_LEVELS.indexOf(v as Sandbox);
    if (level < 0) refuse('sandbox', v, `one of ${SANDBOX_LEVELS.join(', ')}`);
    if (policy) {
      const limit = SANDBOX_LEVELS.indexOf(policy.runner_sandbox);
      if (level > limit) {
        refuse('sandbox', v, `${SANDBOX_LEVELS.slice(0, limit + 1).join(' or ')}: watcher.runner_sandbox is ${policy.runner_sandbox} and a prompt may only ask for a stricter sandbox`);
      }
    }
    out.sandbox = v as Sandbox;
  }

  if (given.timeout !== undefined) {
    const v = given.timeout;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) refuse('timeout', v, 'a number of seconds > 0');
    if (policy && v > policy.runner_timeout_seconds) {
      refuse('timeout', v, `at most ${policy.runner_timeout_seconds} seconds (watcher.runner_timeout_seconds; a prompt may only shorten it)`);
    }
    out.timeout = v;
  }

  if (given.max_tokens !== undefined) {
    const v = given.max_tokens;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) refuse('max_tokens', v, 'a whole number of tokens > 0');
    const cap = policy?.runner_max_tokens ?? 0;
    if (cap > 0 && v > cap) {
      refuse('max_tokens', v, `at most ${cap} tokens (watcher.runner_max_tokens; a prompt may only lower it)`);
    }
    out.max_tokens = v;
  }
  if (given.follow_up !== undefined) {
    const v = given.follow_up;
    const ref = typeof v === 'string' ? followUpReference(v) : undefined;
    if (!ref) refuse('follow_up', v, 'a run id (YYYYMMDD-HHMMSS-mmm-xxxxxxxx) or the URL of a pull request (https://host/owner/repo/pull/N)');
    out.follow_up = ref.value;
  }
  return out;
}

/** How the agent runs for this prompt: the checked front matter within the operator's limits. */
export interface AgentSettings {
  model: string;
  sandbox: Sandbox;
  timeoutSeconds: number;
  /** the run's token cap: front matter max_tokens, else watcher.runner_max_tokens; 0 = none */
  maxTokens: number;
}

export function agentSettings(frontMatter: unknown, policy: FrontMatterPolicy): AgentSettings {
  const fm = checkFrontMatter(frontMatter ?? {}, policy);
  return {
    model: fm.model ?? policy.runner_model,
    sandbox: (fm.sandbox as Sandbox | undefined) ?? policy.runner_sandbox,
    timeoutSeconds: fm.timeout ?? policy.runner_timeout_seconds,
    maxTokens: fm.max_tokens ?? policy.runner_max_tokens ?? 0,
  };
}

/** How the pull request is opened: a draft if either asks, the operator's labels plus the prompt's. */
export function prSettings(frontMatter: unknown, policy: FrontMatterPolicy & Pick<WatcherConfig, 'pr_labels'>): { draft: boolean; labels: string[] } {
  const fm = checkFrontMatter(frontMatter ?? {}, policy);
  return { draft: fm.draft ?? policy.pr_draft, labels: [...new Set([...policy.pr_labels, ...(fm.labels ?? [])])] };
}

/** The prompt's first Markdown heading, if any. */
export function firstHeading(body: string): string | undefined {
  const m = /^\s{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/m.exec(body);
  return m?.[1]?.trim() || undefined;
}
