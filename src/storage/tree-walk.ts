import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

// Walks a folder's files for quota scans and retention: regular files only, symlinks never followed (they could
// lead out of the folder), directories depth first. Missing roots are empty.

export interface WalkedFile {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
}

export async function* walkFiles(root: string): AsyncGenerator<WalkedFile> {
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw err;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) pending.push(path);
      else if (e.isFile()) {
        try {
          const st = await lstat(path);
          yield { path, name: e.name, size: st.size, mtimeMs: st.mtimeMs };
        } catch {
          // removed meanwhile
        }
      }
    }
  }
}
