import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-tree',
  summary: 'pv-tree (not built yet)',
  usage: 'pv-tree',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-tree is not built yet');
    return EX.SOFTWARE;
  },
});
