import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-settle',
  summary: 'pv-settle (not built yet)',
  usage: 'pv-settle',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-settle is not built yet');
    return EX.SOFTWARE;
  },
});
