import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-publish',
  summary: 'pv-publish (not built yet)',
  usage: 'pv-publish',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-publish is not built yet');
    return EX.SOFTWARE;
  },
});
