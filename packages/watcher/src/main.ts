import { EX, defineTool } from '@prompt-valet/core';

// Placeholder until this tool's issue lands; replaced by the real tool.
export const main = defineTool({
  name: 'pv-watcher',
  summary: 'pv-watcher (not built yet)',
  usage: 'pv-watcher',
  epilogue: '',
  async run(ctx) {
    ctx.log.error('pv-watcher is not built yet');
    return EX.SOFTWARE;
  },
});
