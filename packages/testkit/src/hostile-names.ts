/**
 * Inbox paths (legacy_single_owner layout, relative to the inbox) that must
 * never resolve, with the record error code each must produce. Shared by
 * the tests of every tool that turns inbox paths into names (pv-resolve,
 * pv-tree, pv-web). Every one is a legal file name on Linux.
 */
export interface HostilePath {
  rel: string;
  code: 'bad_repo' | 'bad_branch' | 'bad_prompt_name' | 'path_too_shallow';
  why: string;
}

export const HOSTILE_INBOX_PATHS: readonly HostilePath[] = [
  { rel: 'bad repo/main/x.prompt.md', code: 'bad_repo', why: 'space in the repository' },
  { rel: '-rf/main/x.prompt.md', code: 'bad_repo', why: 'repository reads as an option' },
  { rel: '$(touch pwned)/main/x.prompt.md', code: 'bad_repo', why: 'shell substitution' },
  { rel: 'wid`id`get/main/x.prompt.md', code: 'bad_repo', why: 'backticks' },
  { rel: 'wid;get/main/x.prompt.md', code: 'bad_repo', why: 'semicolon' },
  { rel: 'widgét/main/x.prompt.md', code: 'bad_repo', why: 'non-ASCII repository' },
  { rel: 'widget\nx/main/x.prompt.md', code: 'bad_repo', why: 'newline in the repository' },
  { rel: 'widget/-b/x.prompt.md', code: 'bad_branch', why: 'branch reads as an option' },
  { rel: 'widget/a..b/x.prompt.md', code: 'bad_branch', why: '".." in a branch' },
  { rel: 'widget/x.lock/x.prompt.md', code: 'bad_branch', why: 'branch ends in .lock' },
  { rel: 'widget/main./x.prompt.md', code: 'bad_branch', why: 'branch ends in "."' },
  { rel: 'widget/~x/x.prompt.md', code: 'bad_branch', why: 'decodes to "/x"' },
  { rel: 'widget/a~~b/x.prompt.md', code: 'bad_branch', why: 'decodes to "a//b"' },
  { rel: 'widget/ma:in/x.prompt.md', code: 'bad_branch', why: 'colon in a branch' },
  { rel: 'widget/ma in/x.prompt.md', code: 'bad_branch', why: 'space in a branch' },
  { rel: 'widget/ma^in/x.prompt.md', code: 'bad_branch', why: 'caret in a branch' },
  { rel: 'widget/@/x.prompt.md', code: 'bad_branch', why: 'the branch "@"' },
  { rel: 'widget/main/x\u0007bell.prompt.md', code: 'bad_prompt_name', why: 'control character in the prompt name' },
  { rel: 'x.prompt.md', code: 'path_too_shallow', why: 'directly in the inbox' },
  { rel: 'widget/x.prompt.md', code: 'path_too_shallow', why: 'no branch folder' },
];
