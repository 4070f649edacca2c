import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rmdir, stat, statfs, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { FtpError } from '../errors.js';
import type { FileInfo, StorageSession, Upload, UploadMode } from './backend.js';
import { HomeJail, toStorageError } from './home-jail.js';
import type { DigestPool } from './digest-pool.js';
import { INVALID_REST, openLocalUpload } from './local-upload.js';
import { isUploadArtifact, PARTIAL_PREFIX } from './upload-names.js';
import { nameProblem, resolveVirtualPath, virtualBaseName, type PathLimits } from './virtual-path.js';

export interface LocalStorageOptions {
  /** Real home directory; created (mkdir -p) when missing. */
  home: string;
  maxPathBytes: number;
  maxNameBytes: number;
  /** storage.atomicUploads: uploads become visible only when complete. */
  atomicUploads: boolean;
  /** storage.fsyncOnCommit: an upload is on stable storage before commit reports it stored. Default true. */
  fsyncOnCommit?: boolean;
  /** Where SHA-256 digests are computed (uploads and HASH), off the event loop. */
  digests: DigestPool;
  log?: Logger;
}

export interface LocalStorageSession extends StorageSession {
  /** Settles once the home exists; rejects with FtpError 550 when it cannot be created (refuse the login then). */
  readonly ready: Promise<void>;
}

/** lstat calls a listing keeps in flight: enough to hide latency, few enough to leave the thread pool to transfers. */
const LIST_STAT_BATCH = 32;
/** One TLS record's worth: the smallest read buffer worth allocating. */
const MIN_READ_BUFFER_BYTES = 16 * 1024;
/** STOU tries `hint`, `hint.1` … before falling back to a random suffix. */
const UNIQUE_NUMBERED_TRIES = 100;

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function createLocalStorage(opts: LocalStorageOptions): LocalStorageSession {
  return new LocalStorage(opts);
}

class LocalStorage implements LocalStorageSession {
  readonly #jail: HomeJail;
  readonly #limits: PathLimits;
  readonly #atomic: boolean;
  readonly #fsync: boolean;
  readonly #digests: DigestPool;
  readonly #log: Logger | undefined;
  readonly ready: Promise<void>;

  constructor(opts: LocalStorageOptions) {
    this.#log = opts.log;
    this.#jail = new HomeJail(opts.home, opts.log);
    this.#limits = { maxPathBytes: opts.maxPathBytes, maxNameBytes: opts.maxNameBytes };
    this.#atomic = opts.atomicUploads;
    this.#fsync = opts.fsyncOnCommit ?? true;
    this.#digests = opts.digests;
    this.ready = this.#jail.ready.then(() => undefined);
    this.ready.catch(() => undefined);
  }

  resolve(cwd: string, clientPath: string): string {
    return resolveVirtualPath(cwd, clientPath, this.#limits);
  }

  async stat(path: string): Promise<FileInfo> {
    try {
      const real = await this.#jail.follow(path);
      return toInfo(virtualBaseName(path), await stat(real));
    } catch (err) {
      throw toStorageError(err);
    }
  }

  async list(path: string): Promise<FileInfo[]> {
    let dir: string;
    let raw: Buffer[];
    try {
      dir = await this.#jail.follow(path);
      raw = await readdir(dir, { encoding: 'buffer' });
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
    const names: string[] = [];
    let skipped = 0;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (const bytes of raw) {
      let name: string;
      try {
        name = decoder.decode(bytes);
      } catch {
        skipped++;
        continue;
      }
      if (isUploadArtifact(name)) continue;
      // A name the client could not address again (CR/LF, backslash, over-long) is left out of the listing.
      if (nameProblem(name, this.#limits.maxNameBytes) !== null) {
        skipped++;
        continue;
      }
      names.push(name);
    }
    if (skipped > 0) this.#log?.warn({ path, skipped, reason: 'unlistable_name' }, 'listing skipped names clients cannot use');
    const infos: FileInfo[] = [];
    for (let i = 0; i < names.length; i += LIST_STAT_BATCH) {
      const batch = await Promise.all(names.slice(i, i + LIST_STAT_BATCH).map((n) => this.#entryInfo(dir, n)));
      for (const info of batch) if (info !== null) infos.push(info);
    }
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One listing entry; a symlink shows its target when the target is inside the home, else stays a 'link'. */
  async #entryInfo(dir: string, name: string): Promise<FileInfo | null> {
    const real = join(dir, name);
    let st: Stats;
    try {
      st = await lstat(real);
    } catch {
      return null; // removed since readdir
    }
    if (!st.isSymbolicLink()) return toInfo(name, st);
    try {
      const target = await realpath(real);
      if (await this.#jail.contains(target)) return toInfo(name, await stat(target));
    } catch {
      // broken link: listed as a link
    }
    return toInfo(name, st);
  }

  async mkdir(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Directory already exists', { reason: 'exists' });
    try {
      await mkdir(await this.#jail.entry(path));
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
  }

  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Cannot remove the home directory', { reason: 'home_dir' });
    try {
      const real = await this.#jail.entry(path);
      try {
        await rmdir(real);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || !(await this.#removeKeptPartials(real))) throw err;
        await rmdir(real);
      }
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
  }

  /**
   * A directory that looks empty to the client may still hold kept partials (hidden); RMD removes them. Upload
   * temporaries of transfers still running keep the directory, so those fail with "not empty".
   */
  async #removeKeptPartials(dir: string): Promise<boolean> {
    const entries = await readdir(dir);
    if (!entries.every((n) => n.startsWith(PARTIAL_PREFIX))) return false;
    await Promise.all(entries.map((n) => unlink(join(dir, n))));
    return true;
  }

  async unlink(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Cannot remove the home directory', { reason: 'home_dir' });
    try {
      const real = await this.#jail.entry(path);
      if ((await lstat(real)).isDirectory()) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
      await unlink(real);
    } catch (err) {
      throw toStorageError(err);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    if (from === '/' || to === '/') throw new FtpError(550, 'Cannot rename the home directory', { reason: 'home_dir' });
    try {
      const realFrom = await this.#jail.entry(from);
      const realTo = await this.#jail.entry(to);
      const st = await lstat(realFrom);
      if (st.isDirectory() && (realTo === realFrom || realTo.startsWith(realFrom + sep))) {
        throw new FtpError(550, 'Cannot move a directory into itself', { reason: 'rename_into_itself' });
      }
      // The target's parent must exist: rename fails with ENOENT (550) otherwise, nothing is created on the way.
      await rename(realFrom, realTo);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EXDEV') throw new FtpError(550, 'Cannot rename across file systems', { reason: 'cross_device', cause: err });
      if (code === 'EINVAL') throw new FtpError(550, 'Cannot move a directory into itself', { reason: 'rename_into_itself', cause: err });
      throw toStorageError(err);
    }
  }

  async setMtime(path: string, mtime: Date): Promise<void> {
    try {
      const real = await this.#jail.follow(path);
      await utimes(real, (await stat(real)).atime, mtime);
    } catch (err) {
      throw toStorageError(err);
    }
  }

  async openRead(path: string, offset: number, chunkBytes: number): Promise<Readable> {
    const file = await this.#openRegular(path);
    try {
      const { size } = await file.stat();
      // As ProFTPD: REST beyond the end is refused with 554, REST at the end sends zero bytes.
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
      // Each read allocates a buffer of highWaterMark bytes: a 1 MiB buffer for a 4 KiB file costs more CPU than the
      // whole transfer (measured: 6.7 ms against 2.8 ms per small file), so small files get a buffer their size.
      const highWaterMark = Math.max(MIN_READ_BUFFER_BYTES, Math.min(chunkBytes, size - offset + 1));
      return file.createReadStream({ start: offset, highWaterMark, autoClose: true });
    } catch (err) {
      await file.close().catch(() => undefined);
      throw toStorageError(err);
    }
  }

  async openUpload(path: string, mode: UploadMode, chunkBytes: number): Promise<Upload> {
    if (path === '/') throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    try {
      const real = await this.#jail.follow(path);
      const dir = dirname(real);
      let existing: Stats | null = null;
      try {
        existing = await stat(real);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (!(await stat(dir)).isDirectory()) throw new FtpError(550, 'Not a directory', { reason: 'not_dir' });
      }
      if (existing?.isDirectory()) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
      if (existing !== null && !existing.isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
      return await openLocalUpload(
        { dir, name: basename(real), existing },
        mode,
        { atomic: this.#atomic, fsync: this.#fsync, chunkBytes, digests: this.#digests, log: this.#log },
      );
    } catch (err) {
      throw toStorageError(err);
    }
  }

  async uniqueName(dir: string, hint: string): Promise<string> {
    let real: string;
    try {
      real = await this.#jail.follow(dir);
      if (!(await stat(real)).isDirectory()) throw new FtpError(550, 'Not a directory', { reason: 'not_dir' });
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
    const base = this.#uniqueBase(hint);
    for (let i = 0; i <= UNIQUE_NUMBERED_TRIES; i++) {
      const candidate = i === 0 ? base : `${base}.${i}`;
      if (Buffer.byteLength(candidate) > this.#limits.maxNameBytes) break;
      if (!(await exists(join(real, candidate)))) return candidate;
    }
    return `ftpsd-${randomBytes(8).toString('hex')}`;
  }

  #uniqueBase(hint: string): string {
    const name = hint.slice(hint.lastIndexOf('/') + 1);
    if (name === '' || name === '.' || name === '..' || nameProblem(name, this.#limits.maxNameBytes) !== null) return 'file';
    return name;
  }

  async sha256(path: string): Promise<string> {
    const file = await this.#openRegular(path);
    const job = this.#digests.job(file.fd);
    try {
      job.extend((await file.stat()).size);
      return await job.digest();
    } catch (err) {
      throw toStorageError(err);
    } finally {
      await job.drop();
      await file.close().catch(() => undefined);
    }
  }

  /** Free space of the file system holding `path` that an unprivileged writer may use (statfs f_bavail). */
  async spaceAvailable(path: string): Promise<number> {
    try {
      const fs = await statfs(await this.#jail.follow(path), { bigint: true });
      return Number(fs.bavail * fs.bsize);
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
  }

  /** Opens a regular file for reading; directories and devices are refused with 550 before any byte is read. */
  async #openRegular(path: string): Promise<FileHandle> {
    let file: FileHandle | undefined;
    try {
      file = await open(await this.#jail.follow(path), READ_FLAGS);
      const st = await file.stat();
      if (st.isDirectory()) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
      if (!st.isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
      return file;
    } catch (err) {
      await file?.close().catch(() => undefined);
      throw toStorageError(err);
    }
  }
}

function toInfo(name: string, st: Stats): FileInfo {
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
  return { name, type, size: st.size, mtime: st.mtime, mode: st.mode & 0o7777, unique: `${st.dev.toString(16)}g${st.ino.toString(16)}` };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw toStorageError(err);
  }
}

