import { randomBytes } from 'node:crypto';
import { constants, lstatSync, mkdirSync, renameSync, rmdirSync, unlinkSync, utimesSync, type Stats } from 'node:fs';
import { readdir, statfs } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { FtpError } from '../errors.js';
import { FILE_RANGE, type FileInfo, type FileRange, type Listing, type StorageSession, type Upload, type UploadMode } from './backend.js';
import { Descriptor } from './descriptor.js';
import { fdPath, HomeJail, O_PATH, toStorageError, type ConfinementViolation, type VerifiedDir } from './home-jail.js';
import type { DigestPool } from './digest-pool.js';
import { LocalListing, toInfo } from './local-listing.js';
import { INVALID_REST, openLocalUpload, type UploadTarget } from './local-upload.js';
import { PARTIAL_PREFIX } from './upload-names.js';
import { nameProblem, resolveVirtualPath, virtualBaseName, virtualParent, type PathLimits } from './virtual-path.js';

export interface LocalStorageOptions {
  /** Real home directory; created (mkdir -p) when missing. */
  home: string;
  maxPathBytes: number;
  maxNameBytes: number;
  /** storage.atomicUploads: uploads become visible only when complete. */
  atomicUploads: boolean;
  /** storage.fsyncOnCommit: an upload is on stable storage before commit reports it stored. Default true. */
  fsyncOnCommit?: boolean;
  /** storage.syncIoMaxBytes: uploads holding at most this many bytes at their end write them on the event loop. Default 0. */
  syncIoMaxBytes?: number;
  /** storage.listingSortMaxEntries: directories up to this many entries are listed sorted by name. */
  listingSortMaxEntries?: number;
  /** Where SHA-256 digests are computed (uploads and HASH), off the event loop. */
  digests: DigestPool;
  log?: Logger;
  /** Every caught escape from the home (see home-jail.ts), for the audit trail. */
  onViolation?: (v: ConfinementViolation) => void;
}

export interface LocalStorageSession extends StorageSession {
  /** Settles once the home exists; rejects with FtpError 550 when it cannot be created (refuse the login then). */
  readonly ready: Promise<void>;
}

/** The schema's default for storage.listingSortMaxEntries. */
const DEFAULT_SORT_MAX_ENTRIES = 10_000;
/** One TLS record's worth: the smallest read buffer worth allocating. */
const MIN_READ_BUFFER_BYTES = 16 * 1024;
/** STOU tries `hint`, `hint.1` … before falling back to a random suffix. */
const UNIQUE_NUMBERED_TRIES = 100;
/** A stored time may differ this much from the one set (FAT keeps even seconds) and still count as stored. */
const MTIME_TOLERANCE_MS = 2_000;

// Reopening a verified descriptor through /proc/self/fd/N: no O_NOFOLLOW, that path is the (magic) link to it.
// O_NONBLOCK although the inode was checked to be a regular file: an open on the event loop must never wait.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/*
 * Metadata calls (open, fstat, lstat, rename, unlink, mkdir, rmdir, utimes, close) run synchronously on the event
 * loop: the kernel answers them from memory in microseconds, a tenth of what a trip through libuv's thread pool
 * costs (see descriptor.ts). File contents, fsync, listings' directory reads and statfs stay on the thread pool.
 */

export function createLocalStorage(opts: LocalStorageOptions): LocalStorageSession {
  return new LocalStorage(opts);
}

class LocalStorage implements LocalStorageSession {
  readonly #jail: HomeJail;
  readonly #limits: PathLimits;
  readonly #atomic: boolean;
  readonly #fsync: boolean;
  readonly #syncIoMax: number;
  readonly #sortMax: number;
  readonly #digests: DigestPool;
  readonly #log: Logger | undefined;
  readonly ready: Promise<void>;

  constructor(opts: LocalStorageOptions) {
    this.#log = opts.log;
    this.#jail = new HomeJail(opts.home, opts.log, opts.onViolation);
    this.#limits = { maxPathBytes: opts.maxPathBytes, maxNameBytes: opts.maxNameBytes };
    this.#atomic = opts.atomicUploads;
    this.#fsync = opts.fsyncOnCommit ?? true;
    this.#syncIoMax = opts.syncIoMaxBytes ?? 0;
    this.#sortMax = opts.listingSortMaxEntries ?? DEFAULT_SORT_MAX_ENTRIES;
    this.#digests = opts.digests;
    this.ready = this.#jail.ready.then(() => undefined);
    this.ready.catch(() => undefined);
  }

  resolve(cwd: string, clientPath: string): string {
    return resolveVirtualPath(cwd, clientPath, this.#limits);
  }

  async stat(path: string): Promise<FileInfo> {
    let handle: Descriptor | undefined;
    try {
      handle = await this.#jail.openPath(path, 'stat');
      return toInfo(virtualBaseName(path), handle.stat());
    } catch (err) {
      throw toStorageError(err);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  async openListing(path: string): Promise<Listing> {
    try {
      const dir = await this.#jail.openDir(path, 'list');
      return new LocalListing(this.#jail, dir, { sortMaxEntries: this.#sortMax, maxNameBytes: this.#limits.maxNameBytes, log: this.#log });
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
  }

  async list(path: string): Promise<FileInfo[]> {
    const infos: FileInfo[] = [];
    for await (const info of await this.openListing(path)) infos.push(info);
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async mkdir(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Directory already exists', { reason: 'exists' });
    await this.#inParent(path, 'mkdir', 'Directory', async (dir, name) => {
      mkdirSync(dir.at(name));
      try {
        dir.recheck('mkdir', path);
      } catch (err) {
        // Created in a directory moved out of the home meanwhile: taken back.
        quietly(() => rmdirSync(dir.at(name)));
        throw err;
      }
    });
  }

  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Cannot remove the home directory', { reason: 'home_dir' });
    await this.#inParent(path, 'rmdir', 'Directory', async (dir, name) => {
      try {
        rmdirSync(dir.at(name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || !(await this.#removeKeptPartials(dir, name, path))) throw err;
        rmdirSync(dir.at(name));
      }
      dir.recheck('rmdir', path);
    });
  }

  /**
   * A directory that looks empty to the client may still hold kept partials (hidden); RMD removes them. Upload
   * temporaries of transfers still running keep the directory, so those fail with "not empty".
   */
  async #removeKeptPartials(parent: VerifiedDir, name: string, path: string): Promise<boolean> {
    const dir = this.#jail.openChildDir(parent, name, path, 'rmdir');
    try {
      const entries = await readdir(fdPath(dir.fd));
      if (!entries.every((n) => n.startsWith(PARTIAL_PREFIX))) return false;
      for (const n of entries) unlinkSync(dir.at(n));
      return true;
    } finally {
      await dir.close();
    }
  }

  async unlink(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Cannot remove the home directory', { reason: 'home_dir' });
    await this.#inParent(path, 'delete', 'File', async (dir, name) => {
      if (lstatSync(dir.at(name)).isDirectory()) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
      unlinkSync(dir.at(name));
      dir.recheck('delete', path);
    });
  }

  async rename(from: string, to: string): Promise<void> {
    if (from === '/' || to === '/') throw new FtpError(550, 'Cannot rename the home directory', { reason: 'home_dir' });
    let src: VerifiedDir | undefined;
    let dst: VerifiedDir | undefined;
    try {
      src = await this.#jail.openDir(virtualParent(from), 'rename');
      dst = await this.#jail.openDir(virtualParent(to), 'rename');
      const a = virtualBaseName(from);
      const b = virtualBaseName(to);
      const st = lstatSync(src.at(a));
      const realFrom = join(src.real, a);
      const realTo = join(dst.real, b);
      if (st.isDirectory() && (realTo === realFrom || realTo.startsWith(realFrom + sep))) {
        throw new FtpError(550, 'Cannot move a directory into itself', { reason: 'rename_into_itself' });
      }
      // The target's parent must exist: rename fails with ENOENT (550) otherwise, nothing is created on the way.
      const source = src.at(a);
      const target = dst.at(b);
      renameSync(source, target);
      try {
        src.recheck('rename', from);
        dst.recheck('rename', to);
      } catch (err) {
        quietly(() => renameSync(target, source));
        throw err;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EXDEV') throw new FtpError(550, 'Cannot rename across file systems', { reason: 'cross_device', cause: err });
      if (code === 'EINVAL') throw new FtpError(550, 'Cannot move a directory into itself', { reason: 'rename_into_itself', cause: err });
      throw toStorageError(err);
    } finally {
      await src?.close();
      await dst?.close();
    }
  }

  async setMtime(path: string, mtime: Date): Promise<void> {
    let handle: Descriptor | undefined;
    try {
      handle = await this.#jail.openPath(path, 'set_mtime');
      const fd = handle.fd;
      const before = handle.stat();
      // utimes through /proc/self/fd/N acts on the verified inode itself (an O_PATH descriptor allows no futimes).
      utimesSync(fdPath(fd), before.atime, mtime);
      const stored = handle.stat().mtime;
      if (Math.abs(stored.getTime() - mtime.getTime()) >= MTIME_TOLERANCE_MS) {
        // ext4 stores 1901-2446 and clamps the rest: say so rather than report a time that is not there.
        quietly(() => utimesSync(fdPath(fd), before.atime, before.mtime));
        throw new FtpError(501, 'Time not representable by the file system', { reason: 'mtime_out_of_range' });
      }
    } catch (err) {
      throw toStorageError(err);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  async openRead(path: string, offset: number, chunkBytes: number): Promise<Readable> {
    const file = await this.#openRegular(path, 'download');
    try {
      const { size } = file.stat();
      // As ProFTPD: REST beyond the end is refused with 554, REST at the end sends zero bytes.
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
      // createReadStream allocates a fresh buffer of highWaterMark bytes: a 1 MiB buffer for a 4 KiB file costs more CPU than the
      // whole transfer (measured: 6.7 ms against 2.8 ms per small file), so small files get a buffer their size.
      const highWaterMark = Math.max(MIN_READ_BUFFER_BYTES, Math.min(chunkBytes, size - offset + 1));
      const range: FileRange = { fd: file.fd, start: offset, size };
      // The stream owns the descriptor from here and closes it when destroyed, after any read of its own.
      return Object.assign(file.createReadStream({ start: offset, highWaterMark, autoClose: true }), { [FILE_RANGE]: range });
    } catch (err) {
      await file.close().catch(() => undefined);
      throw toStorageError(err);
    }
  }

  async openUpload(path: string, mode: UploadMode, chunkBytes: number): Promise<Upload> {
    if (path === '/') throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    let dir: VerifiedDir | undefined;
    try {
      dir = await this.#jail.openDir(virtualParent(path), 'upload');
      const target = await this.#uploadTarget(dir, virtualBaseName(path), path);
      if (target.dir !== dir) await dir.close();
      // From here the upload owns target.dir (and closes it when it fails to open).
      return await openLocalUpload(target, mode, { atomic: this.#atomic, fsync: this.#fsync, chunkBytes, syncWriteMaxBytes: this.#syncIoMax, digests: this.#digests, log: this.#log });
    } catch (err) {
      await dir?.close();
      throw toStorageError(err);
    }
  }

  /**
   * Where an upload to `name` in `dir` lands. A symlink there is written through, as before: the upload replaces
   * the file it leads to, which must be inside the home; its directory is opened and verified in turn, and must
   * still hold that very file.
   */
  async #uploadTarget(dir: VerifiedDir, name: string, vpath: string): Promise<UploadTarget> {
    const st = lstatSync(dir.at(name), { throwIfNoEntry: false });
    if (st === undefined) return { dir, name, vpath, existing: null };
    if (!st.isSymbolicLink()) return { dir, name, vpath, existing: regularTarget(st) };
    let link: Descriptor;
    try {
      link = Descriptor.open(dir.at(name), O_PATH);
    } catch (err) {
      // Writing through a dangling link would create its target, wherever that is.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FtpError(550, 'File not found', { reason: 'broken_link', cause: err });
      throw err;
    }
    try {
      const real = this.#jail.verifyNow(link.fd, vpath, 'upload');
      const existing = regularTarget(link.stat());
      const targetDir = this.#jail.openRealDir(dirname(real), vpath, 'upload');
      try {
        const now = lstatSync(targetDir.at(basename(real)));
        if (now.dev !== existing.dev || now.ino !== existing.ino) this.#jail.violation({ path: vpath, op: 'upload', reason: 'changed_during_operation' });
      } catch (err) {
        await targetDir.close();
        throw err;
      }
      return { dir: targetDir, name: basename(real), vpath, existing };
    } finally {
      await link.close().catch(() => undefined);
    }
  }

  async uniqueName(dir: string, hint: string): Promise<string> {
    let real: VerifiedDir;
    try {
      real = await this.#jail.openDir(dir, 'unique_name');
    } catch (err) {
      throw toStorageError(err, 'Directory');
    }
    try {
      const base = this.#uniqueBase(hint);
      for (let i = 0; i <= UNIQUE_NUMBERED_TRIES; i++) {
        const candidate = i === 0 ? base : `${base}.${i}`;
        if (Buffer.byteLength(candidate) > this.#limits.maxNameBytes) break;
        if (!exists(real.at(candidate))) return candidate;
      }
      return `ftpsd-${randomBytes(8).toString('hex')}`;
    } finally {
      await real.close();
    }
  }

  #uniqueBase(hint: string): string {
    const name = hint.slice(hint.lastIndexOf('/') + 1);
    if (name === '' || name === '.' || name === '..' || nameProblem(name, this.#limits.maxNameBytes) !== null) return 'file';
    return name;
  }

  async sha256(path: string): Promise<string> {
    const file = await this.#openRegular(path, 'hash');
    const job = this.#digests.job(file.fd);
    try {
      job.extend(file.stat().size);
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
    let dir: Descriptor | undefined;
    try {
      // Measured on the verified directory itself, never on a name a concurrent change could redirect.
      dir = await this.#jail.openPath(path, 'avbl');
      const fs = await statfs(fdPath(dir.fd), { bigint: true });
      return Number(fs.bavail * fs.bsize);
    } catch (err) {
      throw toStorageError(err, 'Directory');
    } finally {
      await dir?.close().catch(() => undefined);
    }
  }

  /**
   * Opens a regular file for reading: located and verified without being opened (O_PATH), type-checked, and only
   * then reopened for reading through its descriptor, so exactly the verified inode is read. Directories and devices
   * are refused with 550 before any byte is read.
   */
  async #openRegular(path: string, op: string): Promise<Descriptor> {
    let located: Descriptor | undefined;
    try {
      located = await this.#jail.openPath(path, op);
      const st = located.stat();
      if (st.isDirectory()) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
      if (!st.isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
      return Descriptor.open(fdPath(located.fd), READ_FLAGS);
    } catch (err) {
      throw toStorageError(err);
    } finally {
      await located?.close().catch(() => undefined);
    }
  }

  /** Runs `step` on the verified parent directory of `path` and the entry's name, then releases the directory. */
  async #inParent(path: string, op: string, what: string, step: (dir: VerifiedDir, name: string) => Promise<void>): Promise<void> {
    let dir: VerifiedDir | undefined;
    try {
      dir = await this.#jail.openDir(virtualParent(path), op);
      await step(dir, virtualBaseName(path));
    } catch (err) {
      throw toStorageError(err, what);
    } finally {
      await dir?.close();
    }
  }
}

/** An existing upload target must be a regular file. */
function regularTarget(st: Stats): Stats {
  if (st.isDirectory()) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
  if (!st.isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
  return st;
}

function exists(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    throw toStorageError(err);
  }
}

/** A step whose failure changes nothing for the caller (undoing something on the way to reporting an error). */
function quietly(step: () => void): void {
  try {
    step();
  } catch {
    // the error being reported is the one that matters
  }
}
