import type { TreeBuilderConfig } from '@prompt-valet/core';

/**
 * Which upstream branches get an inbox folder. A list entry that contains
 * "*" is a glob in which "*" matches any run of characters, "/" included
 * (`release/*` matches `release/1.0` and `release/1.0/fix`); any other entry
 * matches only the identical name. Matching is case-sensitive and applies
 * to the branch name, never to its folder name.
 */
export type BranchVerdict = { mirror: true } | { mirror: false; reason: string };

export function compilePattern(entry: string): (name: string) => boolean {
  if (!entry.includes('*')) return (name) => name === entry;
  const source = entry
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const re = new RegExp(`^${source}$`, 's');
  return (name) => re.test(name);
}

function compileList(entries: readonly string[]): (name: string) => string | undefined {
  const matchers = entries.map((e) => ({ entry: e, test: compilePattern(e) }));
  return (name) => matchers.find((m) => m.test(name))?.entry;
}

/**
 * Build the filter once per pass; call it once per branch. With
 * `mirror_agent_branches: false`, branches under the agent branch prefix
 * (`codex/…`) get no folder, whatever the mode.
 */
export function branchPolicy(
  tb: Pick<TreeBuilderConfig, 'branch_mode' | 'branch_whitelist' | 'branch_blacklist' | 'branch_name_blacklist'> & Partial<Pick<TreeBuilderConfig, 'mirror_agent_branches'>>,
  agentBranchPrefix = '',
) {
  const hideAgentBranches = tb.mirror_agent_branches === false && agentBranchPrefix !== '';
  const never = compileList(tb.branch_name_blacklist);
  const white = compileList(tb.branch_whitelist);
  const black = compileList(tb.branch_blacklist);
  const useWhite = tb.branch_mode === 'whitelist' || tb.branch_mode === 'both';
  const useBlack = tb.branch_mode === 'blacklist' || tb.branch_mode === 'both';
  return (branch: string): BranchVerdict => {
    const n = never(branch);
    if (n !== undefined) return { mirror: false, reason: `tree_builder.branch_name_blacklist holds ${JSON.stringify(n)}` };
    if (hideAgentBranches && branch.startsWith(agentBranchPrefix)) {
      return { mirror: false, reason: `an agent branch (${agentBranchPrefix}…) and tree_builder.mirror_agent_branches is false` };
    }
    if (useWhite && white(branch) === undefined) {
      return { mirror: false, reason: `not in tree_builder.branch_whitelist (branch_mode: ${tb.branch_mode})` };
    }
    if (useBlack) {
      const b = black(branch);
      if (b !== undefined) return { mirror: false, reason: `tree_builder.branch_blacklist holds ${JSON.stringify(b)} (branch_mode: ${tb.branch_mode})` };
    }
    return { mirror: true };
  };
}
