import { constants, type Stats } from 'node:fs';
import { copyFile, lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { FtpError } from '../errors.js';
import type { Upload, UploadMode, UploadResult } from './backend.js';
import type { DigestJob, DigestPool } from './digest-pool.js';
import { HashingFileWriter } from './hashing-stream.js';
import { toStorageError } from './home-jail.js';
import { partialName, uploadTempName } from './upload-names.js';

const { O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_NONBLOCK } = constants;
/** New files get 0666 minus the process umask, like any Unix server. */
const NEW_FILE_MODE = 0o666;

/** Where an upload lands, with symlinks already resolved and checked by the caller. */
export interface UploadTarget {
  /** Real directory holding the target; temporaries go here so the final rename stays on one file system. */
  dir: string;
  /** Real name of the target in `dir`. */
  name: string;
  /** The target as it is now: a regular file, or null when missing. */
  existing: Stats | null;
}

export interface UploadOptions {
  /** Write to a hidden temporary and rename on commit (see upload-names.ts); false writes the target in place. */
  atomic: boolean;
  /** fsync the file (and its directory after the rename) before commit reports success. */
  fsync: boolean;
  chunkBytes: number;
  /** Where the SHA-256 of the stored file is computed. */
  digests: DigestPool;
  log?: Logger | undefined;
}

type Phase = 'open' | 'committing' | 'done' | 'aborted';

export const INVALID_REST = 'Requested action not taken: invalid REST offset';

/**
 * Opens an upload. Every error before the first byte (missing directory, bad REST offset, permissions) is thrown
 * here, so the command can refuse before it replies 150. Nothing is left behind when this throws.
 */
export async function openLocalUpload(target: UploadTarget, mode: UploadMode, options: UploadOptions): Promise<Upload> {
  const real = join(target.dir, target.name);
  // REST 0 + STOR is a plain STOR.
  const effective: UploadMode = mode.kind === 'resume' && mode.offset === 0 ? { kind: 'replace' } : mode;
  if (effective.kind === 'resume' && !(Number.isSafeInteger(effective.offset) && effective.offset > 0)) {
    throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
  }
  const temp = options.atomic ? join(target.dir, uploadTempName(target.name)) : null;
  let file: FileHandle | undefined;
  try {
    let prefix: number;
    if (temp === null) ({ file, prefix } = await openInPlace(real, target.existing, effective));
    else ({ file, prefix } = await openTemp(temp, target, effective));
    // A kept prefix (REST, APPE) is hashed by the worker from the file itself, like the bytes that follow.
    const digest = options.digests.job(file.fd);
    digest.extend(prefix);
    return new LocalUpload({ file, digest, prefix, dir: target.dir, real, temp, partial: join(target.dir, partialName(target.name)), options });
  } catch (err) {
    await file?.close().catch(() => undefined);
    if (temp !== null) await removeQuietly(temp);
    throw toStorageError(err);
  }
}

async function openInPlace(real: string, existing: Stats | null, mode: UploadMode): Promise<{ file: FileHandle; prefix: number }> {
  // O_NONBLOCK: opening a FIFO swapped in meanwhile fails instead of blocking a thread-pool thread; no effect on files.
  const base = O_NOFOLLOW | O_NONBLOCK;
  switch (mode.kind) {
    case 'replace':
      return { file: await open(real, base | O_RDWR | O_CREAT | O_TRUNC, NEW_FILE_MODE), prefix: 0 };
    case 'append': {
      const file = await open(real, base | O_RDWR | O_CREAT, NEW_FILE_MODE);
      return { file, prefix: await closingOnError(file, () => regularSize(file)) };
    }
    case 'resume': {
      if (existing === null || existing.size < mode.offset) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
      const file = await open(real, base | O_RDWR);
      return { file, prefix: await closingOnError(file, () => cutAt(file, mode.offset)) };
    }
  }
}

async function openTemp(temp: string, target: UploadTarget, mode: UploadMode): Promise<{ file: FileHandle; prefix: number }> {
  const existing = target.existing;
  const stored = join(target.dir, target.name);
  switch (mode.kind) {
    case 'replace': {
      const file = await open(temp, O_RDWR | O_CREAT | O_EXCL, NEW_FILE_MODE);
      // The rename replaces the inode: carry the old file's permission bits over, as an in-place write would.
      if (existing !== null) await closingOnError(file, () => file.chmod(existing.mode & 0o7777));
      return { file, prefix: 0 };
    }
    case 'append': {
      // Copy first, append to the copy: a failed APPE leaves the stored file exactly as it was.
      if (existing === null) return { file: await open(temp, O_RDWR | O_CREAT | O_EXCL, NEW_FILE_MODE), prefix: 0 };
      await copyFile(stored, temp, constants.COPYFILE_EXCL);
      const file = await open(temp, O_RDWR | O_NOFOLLOW);
      return { file, prefix: await closingOnError(file, () => regularSize(file)) };
    }
    case 'resume': {
      if (!(await claimPartial(join(target.dir, partialName(target.name)), temp, mode.offset))) {
        if (existing === null || existing.size < mode.offset) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
        await copyFile(stored, temp, constants.COPYFILE_EXCL);
      }
      const file = await open(temp, O_RDWR | O_NOFOLLOW);
      return { file, prefix: await closingOnError(file, () => cutAt(file, mode.offset)) };
    }
  }
}

/** Truncates the file to `offset` (REST), refusing when it holds fewer bytes. Returns the offset. */
async function cutAt(file: FileHandle, offset: number): Promise<number> {
  if ((await regularSize(file)) < offset) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
  await file.truncate(offset);
  return offset;
}

/** Runs a step on a freshly opened file; the file is closed when the step fails, so no descriptor leaks. */
async function closingOnError<T>(file: FileHandle, step: () => Promise<T>): Promise<T> {
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
async function claimPartial(partial: string, temp: string, offset: number): Promise<boolean> {
  let st: Stats;
  try {
    st = await lstat(partial);
  } catch {
    return false;
  }
  if (!st.isFile() || st.size < offset) return false;
  try {
    await rename(partial, temp);
    return true;
  } catch {
    return false;
  }
}

async function regularSize(file: FileHandle): Promise<number> {
  const st = await file.stat();
  if (!st.isFile()) throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
  return st.size;
}

interface LocalUploadParts {
  file: FileHandle;
  digest: DigestJob;
  prefix: number;
  dir: string;
  real: string;
  temp: string | null;
  partial: string;
  options: UploadOptions;
}

class LocalUpload implements Upload {
  readonly stream: HashingFileWriter;
  readonly #p: LocalUploadParts;
  #phase: Phase = 'open';
  #fileClosed = false;

  constructor(parts: LocalUploadParts) {
    this.#p = parts;
    this.stream = new HashingFileWriter(parts.file, parts.digest, parts.prefix, parts.options.chunkBytes);
  }

  async commit(): Promise<UploadResult> {
    if (this.#phase !== 'open') throw new FtpError(451, 'Local error in processing', { reason: 'upload_finished' });
    if (!this.stream.writableFinished) {
      // The contract is commit-after-finish; a stream still open or failed must not become the stored file.
      await this.abort(false);
      throw new FtpError(451, 'Local error in processing', { reason: 'upload_incomplete' });
    }
    this.#phase = 'committing';
    const { file, dir, temp, real, options, digest } = this.#p;
    let sha256: string;
    try {
      // The worker reads the file back while it is synced to disk; the descriptor is closed only after both.
      [sha256] = await Promise.all([digest.digest(), options.fsync ? file.sync() : undefined]);
      await this.#closeFile();
      if (temp !== null) {
        // rename(2) over a directory fails with EISDIR/ENOTEMPTY: the target is refused with 550 and the temp removed.
        await rename(temp, real);
        if (options.fsync) await syncDirectory(dir);
        // A partial kept from an earlier attempt is stale now that the whole file is stored.
        await removeQuietly(this.#p.partial);
      }
    } catch (err) {
      this.#phase = 'aborted';
      await this.#closeFile();
      if (temp !== null) await removeQuietly(temp);
      throw toStorageError(err);
    }
    this.#phase = 'done';
    const bytes = this.stream.bytesStored;
    return { bytes, size: this.#p.prefix + bytes, sha256 };
  }

  async abort(keepPartial: boolean): Promise<void> {
    if (this.#phase !== 'open') return;
    this.#phase = 'aborted';
    const { temp, partial, options } = this.#p;
    await destroyAndWait(this.stream);
    let size = 0;
    try {
      size = (await this.#p.file.stat()).size;
    } catch {
      size = 0;
    }
    await this.#closeFile();
    // In place (atomicUploads off) the received bytes already are the file, as with vsftpd; nothing to move.
    if (temp === null) return;
    if (keepPartial && size > 0) {
      try {
        await rename(temp, partial);
        return;
      } catch (err) {
        options.log?.warn({ err, reason: 'partial_keep_failed' }, 'could not keep partial upload');
      }
    }
    await removeQuietly(temp);
  }

  async #closeFile(): Promise<void> {
    if (this.#fileClosed) return;
    this.#fileClosed = true;
    // The digest worker may still read the descriptor (an abort, a failed commit): it lets go first.
    await this.#p.digest.drop();
    // FileHandle.close waits for writes still in flight, so the descriptor is never reused under them.
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

/** POSIX: a rename is durable only once the directory holding it is synced too. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

