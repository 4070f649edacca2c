import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Relative path → content (a file) or null (an empty directory). */
export type FileTree = Record<string, Buffer | null>;

/**
 * A partner's typical drop: nested directories with spaces and UTF-8 names, an empty file, an empty directory, many
 * small files and one of `bigBytes`, so clients that transfer several files at once have something to spread.
 */
export function partnerTree(bigBytes: number): FileTree {
  const tree: FileTree = {
    'readme.txt': Buffer.from('top level\n'),
    'empty file': Buffer.alloc(0),
    'big.bin': randomBytes(bigBytes),
    'with space/inner file.bin': randomBytes(70_000),
    'with space/日本/データ.dat': randomBytes(12_345),
    'ümlaut dir/grüße.txt': Buffer.from('grüße\n'),
    'ümlaut dir/deeper/one more.bin': randomBytes(1),
    'empty dir': null,
  };
  for (let i = 0; i < 8; i++) tree[`batch/part-${i}.csv`] = randomBytes(1_000 + i * 40_000);
  return tree;
}

export async function writeTree(root: string, tree: FileTree): Promise<void> {
  for (const [path, body] of Object.entries(tree)) {
    if (body === null) {
      await mkdir(join(root, path), { recursive: true });
      continue;
    }
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), body);
  }
}

/** Relative path → SHA-256 of every file below `root`, 'dir' for every directory: what must survive a round trip. */
export async function contentHashes(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath ?? entry.path, entry.name);
    out[relative(root, full)] = entry.isDirectory() ? 'dir' : createHash('sha256').update(await readFile(full)).digest('hex');
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The files of a tree (not its directories), with their SHA-256. */
export function fileHashes(tree: FileTree): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, body] of Object.entries(tree)) if (body !== null) out[path] = createHash('sha256').update(body).digest('hex');
  return out;
}
