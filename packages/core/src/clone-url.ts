import type { GitProtocol } from './config.js';

/**
 * The clone URL of `<owner>/<repo>` by `watcher.git_protocol`:
 *
 *   https  https://<host>/<owner>/<repo>.git     (http likewise)
 *   ssh    git@<host>:<owner>/<repo>.git
 *   git    git://<host>/<owner>/<repo>.git
 *   file   file://<host>/<owner>/<repo>.git      (<host> is an absolute folder)
 *
 * pv-resolve, pv-tree and pv-clone all build URLs here, so a repository has
 * one URL everywhere. Owner and repo must already be checked names.
 */
export function cloneUrl(protocol: GitProtocol, host: string, owner: string, repo: string): string {
  const h = host.replace(/\/+$/, '');
  switch (protocol) {
    case 'https':
    case 'http':
    case 'git':
      return `${protocol}://${h}/${owner}/${repo}.git`;
    case 'ssh':
      return `git@${h}:${owner}/${repo}.git`;
    case 'file':
      return `file://${h.startsWith('/') ? h : `/${h}`}/${owner}/${repo}.git`;
  }
}
