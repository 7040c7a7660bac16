import { INCOMPLETE_LABEL, type IncompleteReason } from '@prompt-valet/core';

/** Why the agent was stopped, in words (the PR body and the error message). */
export function describeStop(reason: IncompleteReason): string {
  switch (reason) {
    case 'timeout':
      return 'it ran past its time limit';
    case 'idle_timeout':
      return 'it printed nothing for longer than its idle limit';
    case 'aborted':
      return 'the operator aborted the run';
    case 'budget_exceeded':
      return 'it used more tokens than its cap';
  }
}

/** The first lines of a stopped run's draft PR: this is not finished work. */
export function incompleteNote(reason: IncompleteReason): string {
  return `> **Incomplete (${reason}):** the agent was stopped before it finished (${describeStop(reason)}). ` +
    `This draft holds its work so far; the prompt settled as an error. Label \`${INCOMPLETE_LABEL}\`.`;
}
