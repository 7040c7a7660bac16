import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-web',
  summary: 'pv-web (not built yet)',
  usage: 'pv-web',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-web is not built yet');
    return EX.SOFTWARE;
  },
});
