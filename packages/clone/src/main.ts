import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-clone',
  summary: 'pv-clone (not built yet)',
  usage: 'pv-clone',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-clone is not built yet');
    return EX.SOFTWARE;
  },
});
