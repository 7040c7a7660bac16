import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Notifications for every folder below the inbox: one plain (non-recursive)
 * fs.watch per folder. Node 20's `recursive: true` on Linux also watches each
 * file, so a single file the service user may not read (an operator's 0600
 * upload, scp's temporary file) fails the whole watch with EACCES; inotify on
 * a folder needs only the folder. Hidden folders are not watched (nothing in
 * them is claimed). New folders are picked up from their parent's events and
 * at every `sync()` (the rescan), gone ones are dropped.
 */
export class FolderWatch {
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private closed = false;

  constructor(
    private readonly root: string,
    /** a name changed in `dir` (absolute); `name` may be null when the kernel did not say */
    private readonly onChange: (dir: string, name: string | null) => void,
    private readonly onProblem: (message: string) => void,
  ) {}

  /** Watch every folder that exists now (and stop watching the ones that went away). */
  sync(): void {
    if (this.closed) return;
    const seen = new Set<string>();
    this.addTree(this.root, seen);
    for (const [dir, w] of this.watchers) {
      if (!seen.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
  }

  get size(): number {
    return this.watchers.size;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private addTree(dir: string, seen: Set<string>): void {
    seen.add(dir);
    this.add(dir);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // gone, or not readable: the rescan reports folders it cannot read
    }
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith('.')) this.addTree(path.join(dir, e.name), seen);
    }
  }

  private add(dir: string): void {
    if (this.watchers.has(dir)) return;
    let w: fs.FSWatcher;
    try {
      w = fs.watch(dir, { persistent: false }, (_event, filename) => {
        const name = filename === null ? null : String(filename);
        // A new folder: watch it (and what it already holds). A prompt may already be in it
        // (mkdir -p, then a copy, faster than this watch): report it as a change with no name,
        // so the whole inbox is looked at.
        if (name !== null && !name.startsWith('.')) {
          const child = path.join(dir, name);
          if (!this.watchers.has(child) && isFolder(child)) {
            this.addTree(child, new Set());
            this.onChange(child, null);
            return;
          }
        }
        this.onChange(dir, name);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onProblem(`cannot watch ${dir} (${(err as Error).message})`);
      return;
    }
    w.on('error', () => {
      // The folder went away (or was replaced): forget it; sync() adds it back if it returns.
      w.close();
      if (this.watchers.get(dir) === w) this.watchers.delete(dir);
    });
    this.watchers.set(dir, w);
  }
}

function isFolder(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
