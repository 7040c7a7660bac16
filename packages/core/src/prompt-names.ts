/**
 * A prompt's state is its file name's suffix (docs/lifecycle.md, "States"):
 * pending `x.prompt.md`, claimed `x.running.md`, settled `x.done.md` /
 * `x.error.md`.
 */
export const PROMPT_SUFFIX = {
  pending: '.prompt.md',
  running: '.running.md',
  done: '.done.md',
  error: '.error.md',
} as const;

export type PromptState = keyof typeof PROMPT_SUFFIX;

/** `x.prompt.md` → { stem: 'x', state: 'pending' }; undefined for other names. */
export function parsePromptName(name: string): { stem: string; state: PromptState } | undefined {
  for (const [state, suffix] of Object.entries(PROMPT_SUFFIX) as [PromptState, string][]) {
    if (name.endsWith(suffix) && name.length > suffix.length) {
      return { stem: name.slice(0, -suffix.length), state };
    }
  }
  return undefined;
}

/** The same prompt's name in another state: `promptName('x', 'done')` → `x.done.md`. */
export function promptName(stem: string, state: PromptState): string {
  return stem + PROMPT_SUFFIX[state];
}
