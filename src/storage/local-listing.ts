import type { Stats } from 'node:fs';
import { lstat, open, opendir, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import type { FileInfo, Listing } from './backend.js';
import { fdPath, O_PATH, type HomeJail, type VerifiedDir } from './home-jail.js';
import { isUploadArtifact } from './upload-names.js';
import { nameProblem } from './virtual-path.js';

/**
 * A directory listed in bounded memory, whatever its size. Names are read from the verified directory descriptor
 * in batches (opendir), each entry is lstat'ed relative to that descriptor with a few calls in flight, and the next
 * batch is read only when the consumer (the data connection, through stream backpressure) asks for more. Memory is
 * one sort buffer of at most `sortMaxEntries` names, the stat window and the socket's buffers.
 *
 * Order: a directory of at most `sortMaxEntries` entries is listed sorted by name, as before; a larger one in the
 * order the file system returns it (as vsftpd and Pure-FTPd do for large directories): sorting it would need every
 * entry in memory at once.
 */
export interface ListingOptions {
  /** storage.listingSortMaxEntries. */
  sortMaxEntries: number;
  maxNameBytes: number;
  log?: Logger | undefined;
}

/** lstat calls a listing keeps in flight: enough to hide latency, few enough to leave the thread pool to transfers. */
const LIST_STAT_CONCURRENCY = 32;
/** Entries opendir fetches per getdents batch. */
const READDIR_BATCH = 256;

export class LocalListing implements Listing {
  readonly #jail: HomeJail;
  readonly #dir: VerifiedDir;
  readonly #opts: ListingOptions;
  #started = false;

  constructor(jail: HomeJail, dir: VerifiedDir, opts: ListingOptions) {
    this.#jail = jail;
    this.#dir = dir;
    this.#opts = opts;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<FileInfo> {
    if (this.#started) throw new Error('a listing is read once');
    this.#started = true;
    try {
      for await (const info of mapOrdered(this.#names(), (name) => this.#entry(name), LIST_STAT_CONCURRENCY)) {
        if (info !== null) yield info;
      }
    } finally {
      await this.close();
    }
  }

  /** Releases the directory; iterating to the end (or breaking out) does it by itself. */
  close(): Promise<void> {
    return this.#dir.close();
  }

  /** Listable names: the first sortMaxEntries + 1 decide whether the listing is sorted. */
  async *#names(): AsyncGenerator<string> {
    const reader = await opendir(fdPath(this.#dir.fd), { encoding: 'buffer' as BufferEncoding, bufferSize: READDIR_BATCH });
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let skipped = 0;
    const accept = (raw: string | Buffer): string | null => {
      let name: string;
      try {
        name = typeof raw === 'string' ? raw : decoder.decode(raw);
      } catch {
        skipped++;
        return null;
      }
      if (isUploadArtifact(name)) return null;
      // A name the client could not address again (CR/LF, backslash, over-long) is left out of the listing.
      if (nameProblem(name, this.#opts.maxNameBytes) !== null) {
        skipped++;
        return null;
      }
      return name;
    };
    try {
      const head: string[] = [];
      let more = true;
      while (head.length <= this.#opts.sortMaxEntries) {
        const entry = await reader.read();
        if (entry === null) {
          more = false;
          break;
        }
        const name = accept(entry.name);
        if (name !== null) head.push(name);
      }
      if (!more) head.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      else this.#opts.log?.debug({ path: this.#dir.vpath, sortMaxEntries: this.#opts.sortMaxEntries }, 'large directory listed unsorted');
      for (let i = 0; i < head.length; i++) yield head[i]!;
      head.length = 0;
      while (more) {
        const entry = await reader.read();
        if (entry === null) break;
        const name = accept(entry.name);
        if (name !== null) yield name;
      }
    } finally {
      await reader.close().catch(() => undefined);
      if (skipped > 0) this.#opts.log?.warn({ path: this.#dir.vpath, skipped, reason: 'unlistable_name' }, 'listing skipped names clients cannot use');
    }
  }

  /** One entry; a symlink shows its target when the target is inside the home, else stays a 'link'. */
  async #entry(name: string): Promise<FileInfo | null> {
    const path = this.#dir.at(name);
    let st: Stats;
    try {
      st = await lstat(path);
    } catch {
      return null; // removed since it was read
    }
    if (!st.isSymbolicLink()) return toInfo(name, st);
    let target: FileHandle | undefined;
    try {
      target = await open(path, O_PATH);
      if ((await this.#jail.realInside(target.fd)) !== null) return toInfo(name, await target.stat());
    } catch {
      // broken link or loop: listed as a link
    } finally {
      await target?.close().catch(() => undefined);
    }
    return toInfo(name, st);
  }
}

/**
 * `fn` over `source` with at most `concurrency` calls in flight, results in source order. Pulls from `source` only as
 * results are consumed. Calls still running when the consumer stops are awaited before `source` is released: they
 * use the directory descriptor, which must not be closed (and its number reused) under them.
 */
async function* mapOrdered<T, R>(source: AsyncIterable<T>, fn: (item: T) => Promise<R>, concurrency: number): AsyncGenerator<R> {
  const window: Array<Promise<R>> = [];
  const iterator = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      while (window.length < concurrency) {
        const next = await iterator.next();
        if (next.done === true) break;
        const p = fn(next.value);
        p.catch(() => undefined);
        window.push(p);
      }
      const head = window.shift();
      if (head === undefined) return;
      yield await head;
    }
  } finally {
    await Promise.allSettled(window);
    await iterator.return?.(undefined);
  }
}

export function toInfo(name: string, st: Stats): FileInfo {
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
  return { name, type, size: st.size, mtime: st.mtime, mode: st.mode & 0o7777, unique: `${st.dev.toString(16)}g${st.ino.toString(16)}` };
}
