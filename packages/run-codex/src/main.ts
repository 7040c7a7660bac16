import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-run-codex',
  summary: 'pv-run-codex (not built yet)',
  usage: 'pv-run-codex',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-run-codex is not built yet');
    return EX.SOFTWARE;
  },
});
