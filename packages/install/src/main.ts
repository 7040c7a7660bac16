import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-install',
  summary: 'pv-install (not built yet)',
  usage: 'pv-install',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-install is not built yet');
    return EX.SOFTWARE;
  },
});
