import { constants, createReadStream, lstatSync, renameSync, unlinkSync, type Stats } from 'node:fs';
import { copyFile, rename, unlink } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { FtpError } from '../errors.js';
import { join } from 'node:path';
import type { CommitOptions, Upload, UploadMode, UploadResult } from './backend.js';
import { Descriptor } from './descriptor.js';
import type { DigestJob, DigestPool } from './digest-pool.js';
import { HashingFileWriter } from './hashing-stream.js';
import { fdPath, toStorageError, type VerifiedDir } from './home-jail.js';
import { partialName, uploadTempName } from './upload-names.js';

const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
/** New files get 0666 minus the process umask, like any Unix server. */
const NEW_FILE_MODE = 0o666;

/** Where an upload lands: a name in a directory the home jail opened and verified (see home-jail.ts). */
export interface UploadTarget {
  /** The target's directory; temporaries go here too, so the final rename stays in one directory. */
  dir: VerifiedDir;
  /** Real name of the target in `dir`. */
  name: string;
  /** Virtual path of the upload, for refusals and audit events. */
  vpath: string;
  /** The target as it is now: a regular file, or null when missing. */
  existing: Stats | null;
}

export interface UploadOptions {
  /** Write to a hidden temporary and rename on commit (see upload-names.ts); false writes the target in place. */
  atomic: boolean;
  /** fsync the file (and its directory after the rename) before commit reports success. */
  fsync: boolean;
  chunkBytes: number;
  /** storage.syncIoMaxBytes: see HashingFileWriter. */
  syncWriteMaxBytes: number;
  /** Where the SHA-256 of the stored file is computed. */
  digests: DigestPool;
  log?: Logger | undefined;
}

type Phase = 'open' | 'committing' | 'done' | 'aborted';

export const INVALID_REST = 'Requested action not taken: invalid REST offset';

/**
 * Opens an upload. Every error before the first byte (missing directory, bad REST offset, permissions) is thrown
 * here, so the command can refuse before it replies 150. Nothing is left behind when this throws. The upload owns
 * `target.dir` from here: it is closed when this throws, or when the upload is committed or aborted.
 *
 * Every file is created or opened by name inside the verified directory (never by a path resolved again), and the
 * directory is checked to be still inside the home after the open and before the first byte is written.
 *
 * Opens, renames, unlinks and closes run synchronously on the event loop (see descriptor.ts); the file's bytes, its
 * fsync and the directory's fsync go through the thread pool, since they wait for the disk.
 */
export async function openLocalUpload(target: UploadTarget, mode: UploadMode, options: UploadOptions): Promise<Upload> {
  const { dir } = target;
  // REST 0 + STOR is a plain STOR.
  const effective: UploadMode = mode.kind === 'resume' && mode.offset === 0 ? { kind: 'replace' } : mode;
  const temp = options.atomic ? uploadTempName(target.name) : null;
  let file: Descriptor | undefined;
  try {
    if (effective.kind === 'resume' && !(Number.isSafeInteger(effective.offset) && effective.offset > 0)) {
      throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
    }
    const check = () => dir.recheck('upload', target.vpath);
    let prefix: number;
    if (temp === null) ({ file, prefix } = await openInPlace(target, effective, check));
    else ({ file, prefix } = await openTemp(temp, target, effective, check));
    // A kept prefix (REST, APPE) is hashed by the worker from the file itself, like the bytes that follow.
    const digest = options.digests.job(file.fd);
    digest.extend(prefix);
    const replaced = target.existing === null ? null : { size: target.existing.size };
    return new LocalUpload({ file, digest, prefix, dir, name: target.name, vpath: target.vpath, temp, partial: partialName(target.name), replaced, options });
  } catch (err) {
    await file?.close().catch(() => undefined);
    if (temp !== null) removeQuietly(dir.at(temp));
    await dir.close();
    throw toStorageError(err);
  }
}

/** In place (atomicUploads off): the target itself, never followed if a symlink was swapped in. */
async function openInPlace(target: UploadTarget, mode: UploadMode, check: () => void): Promise<{ file: Descriptor; prefix: number }> {
  // O_NONBLOCK: opening a FIFO swapped in meanwhile fails (ENXIO) or returns at once instead of blocking the event
  // loop; no effect on regular files, and anything else is refused by the type check below.
  // No O_TRUNC: a replaced file is cut only once its directory has been checked again.
  const flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | (mode.kind === 'resume' ? 0 : O_CREAT);
  if (mode.kind === 'resume' && (target.existing === null || target.existing.size < mode.offset)) {
    throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
  }
  const file = Descriptor.open(target.dir.at(target.name), flags, NEW_FILE_MODE);
  const prefix = await closingOnError(file, async () => {
    check();
    switch (mode.kind) {
      case 'replace':
        regularSize(file);
        await file.truncate(0);
        return 0;
      case 'append':
        return regularSize(file);
      case 'resume':
        return cutAt(file, mode.offset);
    }
  });
  return { file, prefix };
}

async function openTemp(temp: string, target: UploadTarget, mode: UploadMode, check: () => void): Promise<{ file: Descriptor; prefix: number }> {
  const { dir, existing } = target;
  // O_EXCL: never opens what is already there (EEXIST), so nothing swapped in at the name can block the open.
  const create = async (): Promise<Descriptor> => {
    const file = Descriptor.open(dir.at(temp), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, NEW_FILE_MODE);
    await closingOnError(file, async () => check());
    return file;
  };
  switch (mode.kind) {
    case 'replace': {
      const file = await create();
      // The rename replaces the inode: carry the old file's permission bits over, as an in-place write would.
      if (existing !== null) await closingOnError(file, async () => file.chmod(existing.mode & 0o7777));
      return { file, prefix: 0 };
    }
    case 'append': {
      // Copy first, append to the copy: a failed APPE leaves the stored file exactly as it was.
      const file = await create();
      if (existing === null) return { file, prefix: 0 };
      return { file, prefix: await closingOnError(file, async () => (await copyStored(target, file), regularSize(file))) };
    }
    case 'resume': {
      if (claimPartial(dir, partialName(target.name), temp, mode.offset)) {
        // O_NONBLOCK: the name held a file a moment ago, but whatever was renamed in must not block the open.
        const file = Descriptor.open(dir.at(temp), O_RDWR | O_NOFOLLOW | O_NONBLOCK);
        return { file, prefix: await closingOnError(file, async () => (check(), cutAt(file, mode.offset))) };
      }
      if (existing === null || existing.size < mode.offset) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
      const file = await create();
      return { file, prefix: await closingOnError(file, async () => (await copyStored(target, file), cutAt(file, mode.offset))) };
    }
  }
}

/**
 * Copies the stored target into the open temporary. Both are named by descriptor, so copyFile (copy_file_range,
 * reflinks where the file system has them) reads the stored file found in the verified directory and writes the
 * temporary created there, whatever happens to names meanwhile. It also gives the copy the stored file's mode.
 */
async function copyStored(target: UploadTarget, temp: Descriptor): Promise<void> {
  const stored = Descriptor.open(target.dir.at(target.name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    if (!stored.stat().isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
    // The copy's reads and writes wait for the disk: on the thread pool. copyFile opens the paths itself, so the
    // descriptors have nothing in flight of their own.
    await copyFile(fdPath(stored.fd), fdPath(temp.fd));
  } finally {
    await stored.close().catch(() => undefined);
  }
}

/** Truncates the file to `offset` (REST), refusing when it holds fewer bytes. Returns the offset. */
async function cutAt(file: Descriptor, offset: number): Promise<number> {
  if (regularSize(file) < offset) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
  await file.truncate(offset);
  return offset;
}

/** Runs a step on a freshly opened file; the file is closed when the step fails, so no descriptor leaks. */
async function closingOnError<T>(file: Descriptor, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    await file.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Moves the partial of an earlier aborted upload to `temp` when it holds at least `offset` bytes. The rename makes
 * the claim atomic: two sessions resuming the same name cannot both continue one partial.
 */
function claimPartial(dir: VerifiedDir, partial: string, temp: string, offset: number): boolean {
  let st: Stats;
  try {
    st = lstatSync(dir.at(partial));
  } catch {
    return false;
  }
  if (!st.isFile() || st.size < offset) return false;
  try {
    renameSync(dir.at(partial), dir.at(temp));
    return true;
  } catch {
    return false;
  }
}

function regularSize(file: Descriptor): number {
  const st = file.stat();
  if (!st.isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
  return st.size;
}

interface LocalUploadParts {
  file: Descriptor;
  digest: DigestJob;
  prefix: number;
  dir: VerifiedDir;
  /** Names in `dir`: the target, the temporary (null in place) and the kept partial. */
  name: string;
  temp: string | null;
  partial: string;
  vpath: string;
  replaced: { size: number } | null;
  options: UploadOptions;
}

class LocalUpload implements Upload {
  readonly stream: HashingFileWriter;
  readonly replaced: { size: number } | null;
  readonly #p: LocalUploadParts;
  #phase: Phase = 'open';
  #fileClosed = false;
  #refused = false;

  constructor(parts: LocalUploadParts) {
    this.#p = parts;
    this.replaced = parts.replaced;
    this.stream = new HashingFileWriter(parts.file, parts.digest, parts.prefix, parts.options.chunkBytes, parts.options.syncWriteMaxBytes);
  }

  async commit(commitOptions?: CommitOptions): Promise<UploadResult> {
    if (this.#phase !== 'open') throw new FtpError(451, 'Local error in processing', { reason: 'upload_finished' });
    if (!this.stream.writableFinished) {
      // The contract is commit-after-finish; a stream still open or failed must not become the stored file.
      await this.abort(false);
      throw new FtpError(451, 'Local error in processing', { reason: 'upload_incomplete' });
    }
    this.#phase = 'committing';
    const { file, dir, name, temp, vpath, options, digest } = this.#p;
    let sha256: string;
    try {
      // The worker reads the file back while it is synced to disk; the descriptor is closed only after both.
      [sha256] = await Promise.all([digest.digest(), options.fsync ? file.sync() : undefined]);
      await this.#closeFile();
      if (commitOptions?.check !== undefined) await this.#check(commitOptions.check, sha256);
      // The directory is checked right before the rename and right after it (each a readlink on the event loop, no
      // thread-pool trip): a move of the directory out of the home in between is caught, and the file it took along
      // is removed again.
      dir.recheck('upload', vpath);
      if (temp !== null) {
        // rename(2) over a directory fails with EISDIR/ENOTEMPTY: the target is refused with 550 and the temp removed.
        renameSync(dir.at(temp), dir.at(name));
        try {
          dir.recheck('upload', vpath);
        } catch (err) {
          removeQuietly(dir.at(name));
          throw err;
        }
        // A partial kept from an earlier attempt is stale now that the whole file is stored (either order with the
        // directory's fsync is safe: a stale partial that comes back after a crash is only hidden).
        removeQuietly(dir.at(this.#p.partial));
        if (options.fsync) await dir.sync();
      }
    } catch (err) {
      this.#phase = 'aborted';
      await this.#closeFile();
      if (temp !== null) removeQuietly(dir.at(temp));
      // In place (atomicUploads off) a refused file is already at the target: it goes too.
      else if (this.#refused) removeQuietly(dir.at(name));
      await dir.close();
      throw toStorageError(err);
    }
    this.#phase = 'done';
    await dir.close();
    const bytes = this.stream.bytesStored;
    return { bytes, size: this.#p.prefix + bytes, sha256, storagePath: join(dir.real, name) };
  }

  /** The pre-commit check on the complete file, still under its hidden name (or, in place, at the target). */
  async #check(check: NonNullable<CommitOptions['check']>, sha256: string): Promise<void> {
    const { dir, name, temp } = this.#p;
    const staged = dir.at(temp ?? name);
    const size = this.#p.prefix + this.stream.bytesStored;
    try {
      await check({
        path: join(dir.real, temp ?? name),
        size,
        sha256,
        open: () => createReadStream(staged),
        moveTo: (dest) => moveFile(staged, dest),
      });
    } catch (err) {
      this.#refused = true;
      throw err;
    }
  }

  async abort(keepPartial: boolean): Promise<void> {
    if (this.#phase !== 'open') return;
    this.#phase = 'aborted';
    const { dir, temp, partial, options } = this.#p;
    try {
      await destroyAndWait(this.stream);
      let size = 0;
      try {
        size = this.#p.file.stat().size;
      } catch {
        size = 0;
      }
      await this.#closeFile();
      // In place (atomicUploads off) the received bytes already are the file, as with vsftpd; nothing to move.
      if (temp === null) return;
      if (keepPartial && size > 0) {
        try {
          renameSync(dir.at(temp), dir.at(partial));
          return;
        } catch (err) {
          options.log?.warn({ err, reason: 'partial_keep_failed' }, 'could not keep partial upload');
        }
      }
      removeQuietly(dir.at(temp));
    } finally {
      await dir.close();
    }
  }

  async #closeFile(): Promise<void> {
    if (this.#fileClosed) return;
    this.#fileClosed = true;
    // The digest worker may still read the descriptor (an abort, a failed commit): it lets go first.
    await this.#p.digest.drop();
    // Descriptor.close waits for writes and the fsync still in flight, so the number is never reused under them.
    await this.#p.file.close().catch(() => undefined);
  }
}

function destroyAndWait(stream: HashingFileWriter): Promise<void> {
  return new Promise((resolve) => {
    if (stream.closed) return resolve();
    stream.once('close', () => resolve());
    stream.destroy();
  });
}

/** rename, or copy and remove across file systems (a quarantine folder on another disk). */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to, constants.COPYFILE_EXCL);
    await unlink(from);
  }
}

/** unlink, on the event loop; a name already gone (or never created) is no error here. */
function removeQuietly(path: string): void {
  // Usually there is nothing to remove (no partial was kept): lstat says so without an exception, whose creation
  // cost a failed unlinkSync about 0.1 ms of CPU per upload.
  if (lstatSync(path, { throwIfNoEntry: false }) === undefined) return;
  try {
    unlinkSync(path);
  } catch {
    // gone meanwhile
  }
}
