import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { FtpError } from '../errors.js';
import type { CommitOptions, Upload, UploadMode, UploadResult } from './backend.js';
import { toS3Error } from './s3-errors.js';
import { INVALID_REST, moveFile } from './local-upload.js';

// An upload to an S3 folder. The bytes are hashed as they arrive and sent as parts of a multipart upload that is
// completed only by commit(), which the transfer calls after the data connection's TLS close_notify: until then the
// object does not exist under its key (or keeps its previous content), and abort() throws the parts away. A file
// smaller than one part is sent by commit() in a single PutObject instead, its SHA-256 in its metadata.
//
// APPE and REST+STOR continue the stored object without the client sending it again: a kept prefix of at least
// 5 MiB (S3's smallest part) becomes the first part(s) by UploadPartCopy, inside the store; a smaller one cannot be a
// part of its own, so it is read from the store and sent again as the start of the first part. Either way the prefix
// is read once from the store to continue the SHA-256, since a digest cannot be resumed from its hex value.
//
// A pre-commit check (events, upload_check) needs the complete bytes as a local file before anything is visible at
// the key, and the parts of a multipart upload cannot be read back before it is completed. So when the caller says a
// check may run (`spool`), every byte (a kept prefix included) is also written to a private temporary file as it
// arrives; a file smaller than one part, still in memory at commit, is written there only when a check does run. The
// check runs on that file before the PutObject or CompleteMultipartUpload; a refusal moves it to quarantine (or it is
// deleted) and aborts the multipart upload, so the key never shows the refused bytes. Without a check nothing is
// written locally and the requests are the same.

/** S3's smallest part (every part but the last). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's largest single copy (CopyObject, and one UploadPartCopy). */
export const MAX_COPY_BYTES = 5 * 1024 * 1024 * 1024;
/** Object metadata key of the SHA-256 (hex) of the object's content (x-amz-meta-sha256). */
export const SHA256_META = 'sha256';

export interface S3Object {
  size: number;
  etag: string;
}

export interface S3UploadTarget {
  client: S3Client;
  bucket: string;
  key: string;
  /** The object now at the key, or null. */
  existing: S3Object | null;
}

export interface S3UploadOptions {
  partBytes: number;
  partConcurrency: number;
  /** A pre-commit check may run at commit: keep a local copy of the bytes as they arrive (see the module comment). */
  spool?: boolean;
  log?: Logger | undefined;
}

/** Where the bytes wait for the check: a file in a directory of its own (0700) under the system's temporary directory. */
interface LocalCopy {
  dir: string;
  path: string;
  /** Open while the copy is written; null once closed. */
  file: FileHandle | null;
}

type Phase = 'open' | 'committing' | 'done' | 'aborted';

export async function openS3Upload(target: S3UploadTarget, mode: UploadMode, opts: S3UploadOptions): Promise<Upload> {
  let prefix = 0;
  if (mode.kind === 'append') prefix = target.existing?.size ?? 0;
  else if (mode.kind === 'resume' && mode.offset !== 0) {
    if (!Number.isSafeInteger(mode.offset) || mode.offset < 0 || target.existing === null || target.existing.size < mode.offset) {
      throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
    }
    prefix = mode.offset;
  }
  const upload = new S3Upload(target, opts, prefix);
  if (opts.spool === true) await upload.startLocalCopy();
  if (prefix > 0) {
    try {
      await upload.keepPrefix(target.existing!);
    } catch (err) {
      await upload.abort(false);
      throw toS3Error(err);
    }
  }
  return upload;
}

class S3Upload implements Upload {
  readonly stream: Writable;
  readonly #t: S3UploadTarget;
  readonly #o: S3UploadOptions;
  readonly #hash: Hash = createHash('sha256');
  readonly #abort = new AbortController();
  readonly #finished: Promise<void>;
  #phase: Phase = 'open';
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  /** Bytes received from the client. */
  #bytes = 0;
  /** Size of the object being written: the kept prefix plus the bytes received. */
  #size: number;
  #uploadId: Promise<string> | null = null;
  #nextPart = 1;
  readonly #parts: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #failure: unknown = null;
  /** The local copy of the bytes for a pre-commit check, or null. */
  #copy: LocalCopy | null = null;

  constructor(target: S3UploadTarget, opts: S3UploadOptions, prefix: number) {
    this.#t = target;
    this.#o = opts;
    this.#size = prefix;
    let done!: () => void;
    let failed!: (err: Error) => void;
    this.#finished = new Promise<void>((resolve, reject) => ((done = resolve), (failed = reject)));
    this.#finished.catch(() => undefined);
    this.stream = new Writable({
      highWaterMark: Math.min(opts.partBytes, 1024 * 1024),
      write: (chunk: Buffer, _enc, cb) => void this.#write(chunk).then(() => cb(), cb),
      // The last part waits for commit: a stream that ends is not yet a transfer that ended cleanly.
      final: (cb) => (done(), cb()),
      destroy: (err, cb) => (err === null ? failed(new Error('upload stream closed before its end')) : failed(err), cb(err)),
    });
  }

  /** Starts the local copy every byte goes to as well (see the module comment). */
  async startLocalCopy(): Promise<void> {
    this.#copy = await newLocalCopy();
  }

  /** Appends to the local copy, when there is one; awaited, so the copy never lags behind what the store was sent. */
  async #copyOut(chunk: Buffer): Promise<void> {
    const file = this.#copy?.file;
    if (file === null || file === undefined) return;
    for (let off = 0; off < chunk.length; ) off += (await file.write(chunk, off, chunk.length - off)).bytesWritten;
  }

  /** The first `size` bytes of the stored object become the first bytes of this one (see the module comment). */
  async keepPrefix(existing: S3Object): Promise<void> {
    const size = this.#size;
    const read = await this.#t.client.send(new GetObjectCommand({ Bucket: this.#t.bucket, Key: this.#t.key, Range: `bytes=0-${size - 1}`, IfMatch: existing.etag }), this.#signal);
    const body = read.Body as Readable;
    if (size < MIN_PART_BYTES) {
      for await (const chunk of body) {
        this.#take(chunk as Buffer);
        await this.#copyOut(chunk as Buffer);
      }
      if (this.#bufferedBytes !== size) throw new Error(`kept prefix read ${this.#bufferedBytes} of ${size} bytes`);
      return;
    }
    const hashed = (async () => {
      let n = 0;
      for await (const chunk of body) {
        this.#hash.update(chunk as Buffer);
        await this.#copyOut(chunk as Buffer);
        n += (chunk as Buffer).length;
      }
      if (n !== size) throw new Error(`kept prefix read ${n} of ${size} bytes`);
    })();
    const count = Math.ceil(size / MAX_COPY_BYTES);
    const each = Math.ceil(size / count);
    const copies: Promise<void>[] = [];
    for (let start = 0; start < size; start += each) {
      const end = Math.min(size, start + each) - 1;
      const partNumber = this.#nextPart++;
      copies.push(
        this.#created().then(async (UploadId) => {
          const out = await this.#t.client.send(
            new UploadPartCopyCommand({ Bucket: this.#t.bucket, Key: this.#t.key, UploadId, PartNumber: partNumber, CopySource: copySource(this.#t.bucket, this.#t.key), CopySourceRange: `bytes=${start}-${end}`, CopySourceIfMatch: existing.etag }),
            this.#signal,
          );
          this.#parts.push({ PartNumber: partNumber, ETag: out.CopyPartResult?.ETag });
        }),
      );
    }
    await Promise.all([hashed, ...copies]);
  }

  async #write(chunk: Buffer): Promise<void> {
    if (this.#failure !== null) throw this.#failure;
    if (this.#phase !== 'open') throw new Error(`upload ${this.#phase}`);
    await this.#copyOut(chunk);
    this.#take(chunk);
    this.#bytes += chunk.length;
    if (this.#bufferedBytes >= this.#o.partBytes) this.#sendPart();
    // At most partConcurrency parts travel at once; the client's bytes wait (TCP backpressure) meanwhile.
    while (this.#inFlight.size >= this.#o.partConcurrency) await Promise.race(this.#inFlight);
    if (this.#failure !== null) throw this.#failure;
  }

  #take(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
  }

  #takeBuffered(): Buffer {
    const body = this.#buffered.length === 1 ? this.#buffered[0]! : Buffer.concat(this.#buffered, this.#bufferedBytes);
    this.#buffered = [];
    this.#bufferedBytes = 0;
    return body;
  }

  #created(): Promise<string> {
    this.#uploadId ??= this.#t.client.send(new CreateMultipartUploadCommand({ Bucket: this.#t.bucket, Key: this.#t.key }), this.#signal).then((out) => {
      if (out.UploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
      return out.UploadId;
    });
    return this.#uploadId;
  }

  #sendPart(): void {
    const body = this.#takeBuffered();
    const partNumber = this.#nextPart++;
    const sent: Promise<void> = this.#created()
      .then(async (UploadId) => {
        const out = await this.#t.client.send(new UploadPartCommand({ Bucket: this.#t.bucket, Key: this.#t.key, UploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }), this.#signal);
        this.#parts.push({ PartNumber: partNumber, ETag: out.ETag });
      })
      .catch((err: unknown) => {
        this.#failure ??= err;
      })
      .finally(() => this.#inFlight.delete(sent));
    this.#inFlight.add(sent);
  }

  /** Request options of every request of this upload: abort() cancels those still running. */
  get #signal(): { abortSignal: AbortSignal } {
    return { abortSignal: this.#abort.signal };
  }

  async commit(options?: CommitOptions): Promise<UploadResult> {
    if (this.#phase !== 'open') throw new Error(`upload ${this.#phase}`);
    await this.#finished;
    this.#phase = 'committing';
    const check = options?.check;
    try {
      const sha256 = this.#hash.digest('hex');
      const size = this.#size + this.#bytes;
      if (this.#uploadId === null) {
        const body = this.#takeBuffered();
        if (check !== undefined) await this.#check(check, body, sha256, size);
        await this.#t.client.send(new PutObjectCommand({ Bucket: this.#t.bucket, Key: this.#t.key, Body: body, ContentLength: body.length, Metadata: { [SHA256_META]: sha256 } }), this.#signal);
      } else {
        if (this.#bufferedBytes > 0) this.#sendPart();
        // The check reads the local copy while the last parts travel; both must be done before the upload completes.
        const checked = check === undefined ? undefined : this.#check(check, null, sha256, size);
        checked?.catch(() => undefined);
        while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
        await checked;
        if (this.#failure !== null) throw this.#failure;
        const UploadId = await this.#uploadId;
        const parts = [...this.#parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
        const done = await this.#t.client.send(new CompleteMultipartUploadCommand({ Bucket: this.#t.bucket, Key: this.#t.key, UploadId, MultipartUpload: { Parts: parts } }), this.#signal);
        await this.#recordDigest(sha256, size, done.ETag);
      }
      this.#phase = 'done';
      return { bytes: this.#bytes, size, sha256 };
    } catch (err) {
      // Nothing appeared at the key: the parts are thrown away now, not left to the caller's abort.
      await this.abort(false);
      throw toS3Error(err);
    } finally {
      await this.#dropLocalCopy();
    }
  }

  /**
   * The pre-commit check on the local copy (written now from `body` for a file still in memory). A multipart upload
   * opened without a copy (a check rule added while it ran) cannot be checked: it is refused, to be sent again.
   */
  async #check(check: NonNullable<CommitOptions['check']>, body: Buffer | null, sha256: string, size: number): Promise<void> {
    if (this.#copy === null) {
      if (body === null) {
        this.#o.log?.warn({ object: this.#t.key }, 'upload check applies but the multipart upload kept no local copy; refused');
        throw new FtpError(451, 'Upload refused: the upload check could not run; try again', { reason: 's3_check_without_copy' });
      }
      this.#copy = await newLocalCopy();
      await this.#copyOut(body);
    }
    const copy = this.#copy;
    await copy.file?.close();
    copy.file = null;
    await check({ path: copy.path, size, sha256, open: () => createReadStream(copy.path), moveTo: (dest) => moveFile(copy.path, dest) });
  }

  async #dropLocalCopy(): Promise<void> {
    const copy = this.#copy;
    if (copy === null) return;
    this.#copy = null;
    await copy.file?.close().catch(() => undefined);
    // After a refusal the file may be in quarantine already; the directory goes either way.
    await rm(copy.dir, { recursive: true, force: true }).catch((err: unknown) => this.#o.log?.warn({ err, dir: copy.dir }, 'local copy of an S3 upload not removed'));
  }

  /**
   * A multipart upload's metadata is fixed when it starts, before the digest is known: the object is copied onto
   * itself with its SHA-256 added (a metadata-only change for S3 and RGW). Until then, or above 5 GiB where a single
   * copy is refused, HASH computes the digest by reading the object.
   */
  async #recordDigest(sha256: string, size: number, etag: string | undefined): Promise<void> {
    if (size > MAX_COPY_BYTES) return;
    try {
      await this.#t.client.send(
        new CopyObjectCommand({ Bucket: this.#t.bucket, Key: this.#t.key, CopySource: copySource(this.#t.bucket, this.#t.key), MetadataDirective: 'REPLACE', Metadata: { [SHA256_META]: sha256 }, ...(etag === undefined ? {} : { CopySourceIfMatch: etag }) }),
        this.#signal,
      );
    } catch (err) {
      this.#o.log?.warn({ err, object: this.#t.key }, 'SHA-256 not recorded on the S3 object; HASH will read it');
    }
  }

  async abort(_keepPartial: boolean): Promise<void> {
    // No partial is kept on object storage: a REST continues what was committed (see docs/storage-s3.md).
    if (this.#phase === 'aborted' || this.#phase === 'done') return;
    this.#phase = 'aborted';
    this.#abort.abort();
    if (!this.stream.destroyed) this.stream.destroy();
    await Promise.allSettled([...this.#inFlight]);
    this.#buffered = [];
    await this.#dropLocalCopy();
    if (this.#uploadId === null) return;
    try {
      const UploadId = await this.#uploadId;
      await this.#t.client.send(new AbortMultipartUploadCommand({ Bucket: this.#t.bucket, Key: this.#t.key, UploadId }));
    } catch (err) {
      // Left to the sweeper (storage.s3.staleUploadAgeMs); the object itself never appeared.
      this.#o.log?.warn({ err, object: this.#t.key }, 'multipart upload not aborted; the sweeper will');
    }
  }
}

/** A private directory (mkdtemp: 0700) with an empty file (0600) in it, open for writing. */
async function newLocalCopy(): Promise<LocalCopy> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-s3-check-'));
  const path = join(dir, 'upload');
  try {
    return { dir, path, file: await open(path, 'wx', 0o600) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/** CopySource: "bucket/key" with the key URL-encoded, its slashes kept. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
}
