import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Path (relative to the root) to what is there: type, size, mode, mtime and content hash, or a link's target. */
export type TreeSnapshot = Map<string, string>;

/**
 * Every entry below `root` except `skip` (paths to leave out with all below them, or ''), so a test can show that
 * nothing there was created, changed or removed.
 */
export async function snapshotTree(root: string, skip: string | readonly string[]): Promise<TreeSnapshot> {
  const skipped = new Set(typeof skip === 'string' ? [skip] : skip);
  const out: TreeSnapshot = new Map();
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      if (skipped.has(p)) continue;
      const st = await lstat(p);
      const rel = relative(root, p);
      if (st.isSymbolicLink()) out.set(rel, `link ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${st.mode} ${st.mtimeMs}`);
        await walk(p);
      } else if (st.isFile()) out.set(rel, `file ${st.size} ${st.mode} ${st.mtimeMs} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
      else out.set(rel, `special ${st.mode} ${st.mtimeMs}`);
    }
  };
  await walk(root);
  return out;
}
