import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-claim',
  summary: 'pv-claim (not built yet)',
  usage: 'pv-claim',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-claim is not built yet');
    return EX.SOFTWARE;
  },
});
