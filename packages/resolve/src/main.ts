import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-resolve',
  summary: 'pv-resolve (not built yet)',
  usage: 'pv-resolve',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-resolve is not built yet');
    return EX.SOFTWARE;
  },
});
