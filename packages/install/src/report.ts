import type { Logger } from '@prompt-valet/core';

/**
 * What the installer did, one JSON line per action on stdout:
 * `{"v":1,"action":…,"path":…,"detail":…}`. `ran` is a command run (or, with
 * --dry-run, one that would run); with --dry-run every line carries
 * `"dry_run":true` and nothing is written.
 */
export type Action = 'created' | 'updated' | 'unchanged' | 'skipped' | 'warning' | 'removed' | 'ran';

export interface ActionLine {
  v: 1;
  action: Action;
  path: string;
  detail: string;
  dry_run?: true;
}

export class Reporter {
  readonly lines: ActionLine[] = [];
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly log: Logger,
    readonly dryRun: boolean,
  ) {}

  emit(action: Action, path: string, detail = ''): void {
    const line: ActionLine = { v: 1, action, path, detail };
    if (this.dryRun) line.dry_run = true;
    this.lines.push(line);
    this.out.write(JSON.stringify(line) + '\n');
    if (action === 'warning') this.log.warn(`${path}: ${detail}`);
    else if (action !== 'unchanged') this.log.debug(`${action} ${path}${detail ? ` (${detail})` : ''}`);
  }

  count(action: Action): number {
    return this.lines.filter((l) => l.action === action).length;
  }
}
