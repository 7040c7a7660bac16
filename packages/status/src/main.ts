import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-status',
  summary: 'pv-status (not built yet)',
  usage: 'pv-status',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-status is not built yet');
    return EX.SOFTWARE;
  },
});
