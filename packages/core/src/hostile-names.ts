/**
 * Names that must never reach git, gh or the filesystem as they are. Shared
 * by the tests of every tool that takes a name from outside (the inbox
 * folders, records), so all of them are checked against the same table.
 * `why` starting with "ok-as-branch" marks names git allows as a branch.
 */
export const HOSTILE_NAMES: readonly { name: string; why: string }[] = [
  { name: '-oProxyCommand=x', why: 'reads as an ssh/git option' },
  { name: '--upload-pack=touch /tmp/pwned', why: 'reads as a git option' },
  { name: '-', why: 'a lone dash' },
  { name: '..', why: 'parent folder' },
  { name: '.', why: 'this folder' },
  { name: 'a/../b', why: 'climbs out of its folder' },
  { name: '../etc', why: 'climbs out of its folder' },
  { name: 'with space', why: 'space' },
  { name: 'new\nline', why: 'newline' },
  { name: 'tab\there', why: 'tab' },
  { name: 'nul\0byte', why: 'NUL byte' },
  { name: 'ünïcödé', why: 'ok-as-branch: non-ASCII is not a GitHub name' },
  { name: 'semi;colon', why: 'ok-as-branch: shell metacharacter in a GitHub name' },
  { name: '$(reboot)', why: 'ok-as-branch: command substitution in a GitHub name' },
  { name: '`id`', why: 'ok-as-branch: backticks in a GitHub name' },
  { name: 'a:b', why: 'colon' },
  { name: 'x'.repeat(300), why: 'too long' },
  { name: '', why: 'empty' },
];
