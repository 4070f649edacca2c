import { constants, type Stats } from 'node:fs';
import { opendir } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import type { FileInfo, Listing } from './backend.js';
import { Descriptor } from './descriptor.js';
import { fdPath, O_PATH, type HomeJail, type VerifiedDir } from './home-jail.js';
import { lstatBatch, type RawStat } from './stat-worker.js';
import { isUploadArtifact } from './upload-names.js';
import { nameProblem } from './virtual-path.js';

/**
 * A directory listed in bounded memory, whatever its size. Names are read from the verified directory descriptor
 * in batches (opendir), lstat'ed relative to that descriptor in batches on a worker thread (stat-worker.ts), and the
 * next batch is read only when the consumer (the data connection, through stream backpressure) asks for more.
 * Memory is one sort buffer of at most `sortMaxEntries` names, two stat batches and the socket's buffers.
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

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = constants;
/** Entries lstat'ed per worker message: a message costs about as much as a few dozen lstats. */
const STAT_BATCH = 256;
/** Batches a listing keeps in flight: the next one is looked up while the current one is sent. */
const BATCHES_IN_FLIGHT = 2;
/** Entries opendir fetches per getdents call. */
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
    this.#start();
    try {
      for await (const infos of mapOrdered(batches(this.#names(), STAT_BATCH), (names) => this.#infos(names), BATCHES_IN_FLIGHT)) {
        for (const info of infos) if (info !== null) yield info;
      }
    } finally {
      await this.close();
    }
  }

  async *names(): AsyncGenerator<string> {
    this.#start();
    try {
      yield* this.#names();
    } finally {
      await this.close();
    }
  }

  #start(): void {
    if (this.#started) throw new Error('a listing is read once');
    this.#started = true;
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

  /** Entries of a batch of names; a symlink shows its target when the target is inside the home, else stays a 'link'. */
  async #infos(names: string[]): Promise<Array<FileInfo | null>> {
    const stats = await lstatBatch(`${fdPath(this.#dir.fd)}/`, names);
    return Promise.all(
      names.map((name, i) => {
        const st = stats[i] ?? null;
        if (st === null) return null; // removed since it was read
        return (st.mode & S_IFMT) === S_IFLNK ? this.#link(name, st) : rawInfo(name, st);
      }),
    );
  }

  /** On the event loop: an O_PATH open, a readlink of /proc and an fstat, all answered from memory. */
  async #link(name: string, st: RawStat): Promise<FileInfo> {
    let target: Descriptor | undefined;
    try {
      target = Descriptor.open(this.#dir.at(name), O_PATH);
      if ((await this.#jail.realInside(target.fd)) !== null) return toInfo(name, target.stat());
    } catch {
      // broken link or loop: listed as a link
    } finally {
      await target?.close().catch(() => undefined);
    }
    return rawInfo(name, st);
  }
}

/** Groups `source` into arrays of up to `size`. */
async function* batches<T>(source: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of source) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
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

function rawInfo(name: string, st: RawStat): FileInfo {
  const kind = st.mode & S_IFMT;
  const type = kind === S_IFREG ? 'file' : kind === S_IFDIR ? 'dir' : kind === S_IFLNK ? 'link' : 'other';
  return { name, type, size: st.size, mtime: new Date(st.mtimeMs), mode: st.mode & 0o7777, unique: unique(st.dev, st.ino) };
}

/** RFC 3659 "unique" fact: device and inode. */
function unique(dev: number, ino: number): string {
  return `${dev.toString(16)}g${ino.toString(16)}`;
}

export function toInfo(name: string, st: Stats): FileInfo {
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
  return { name, type, size: st.size, mtime: st.mtime, mode: st.mode & 0o7777, unique: unique(st.dev, st.ino) };
}
