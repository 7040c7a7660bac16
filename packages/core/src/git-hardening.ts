/**
 * git against a checkout an agent controlled (docs/lifecycle.md,
 * docs/security.md): these `-c` options switch off everything through which
 * a repository's config or work tree could make git run a program or read
 * outside it — hooks, fsmonitor, pagers, credential helpers, submodule
 * recursion, background maintenance. Callers also name the git dir and work
 * tree explicitly (never the checkout's own `.git` file) and pass
 * `--no-ext-diff --no-textconv` to diffs.
 */
export const HARDENED_GIT_OPTIONS: readonly string[] = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.untrackedCache=false',
  'core.pager=cat',
  'core.attributesFile=/dev/null',
  'core.excludesFile=/dev/null',
  'credential.helper=',
  'submodule.recurse=false',
  'status.submoduleSummary=false',
  'diff.ignoreSubmodules=all',
  'commit.gpgSign=false',
  'gc.auto=0',
  'maintenance.auto=false',
].flatMap((kv) => ['-c', kv]);

/**
 * For commands that read a hostile work tree: only the repository's own
 * config applies, not the system's or the user's, so an in-tree
 * `.gitattributes` cannot reach a filter or diff driver defined there.
 */
export const ISOLATED_GIT_CONFIG_ENV: Readonly<Record<string, string>> = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_ATTR_NOSYSTEM: '1',
};

/** Variables that would point git at another repository, index, object store or config than the one named. */
export const GIT_REPOSITORY_ENV_VARS: readonly string[] = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_COMMON_DIR',
  'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_CONFIG', 'GIT_CONFIG_PARAMETERS', 'GIT_CONFIG_COUNT',
  'GIT_NAMESPACE'];
