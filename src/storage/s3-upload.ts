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
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { FtpError } from '../errors.js';
import type { Upload, UploadMode, UploadResult } from './backend.js';
import { toS3Error } from './s3-errors.js';
import { INVALID_REST } from './local-upload.js';

// An upload to an S3 folder. The bytes are hashed as they arrive and sent as parts of a multipart upload that is
// completed only by commit(), which the transfer calls after the data connection's TLS close_notify: until then the
// object does not exist under its key (or keeps its previous content), and abort() throws the parts away. A file
// smaller than one part is sent by commit() in a single PutObject instead, its SHA-256 in its metadata.
//
// APPE and REST+STOR continue the stored object without the client sending it again: a kept prefix of at least
// 5 MiB (S3's smallest part) becomes the first part(s) by UploadPartCopy, inside the store; a smaller one cannot be a
// part of its own, so it is read from the store and sent again as the start of the first part. Either way the prefix
// is read once from the store to continue the SHA-256, since a digest cannot be resumed from its hex value.

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
  log?: Logger | undefined;
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

  /** The first `size` bytes of the stored object become the first bytes of this one (see the module comment). */
  async keepPrefix(existing: S3Object): Promise<void> {
    const size = this.#size;
    const read = await this.#t.client.send(new GetObjectCommand({ Bucket: this.#t.bucket, Key: this.#t.key, Range: `bytes=0-${size - 1}`, IfMatch: existing.etag }), this.#signal);
    const body = read.Body as Readable;
    if (size < MIN_PART_BYTES) {
      for await (const chunk of body) this.#take(chunk as Buffer);
      if (this.#bufferedBytes !== size) throw new Error(`kept prefix read ${this.#bufferedBytes} of ${size} bytes`);
      return;
    }
    const hashed = (async () => {
      let n = 0;
      for await (const chunk of body) {
        this.#hash.update(chunk as Buffer);
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

  async commit(): Promise<UploadResult> {
    if (this.#phase !== 'open') throw new Error(`upload ${this.#phase}`);
    await this.#finished;
    this.#phase = 'committing';
    try {
      const sha256 = this.#hash.digest('hex');
      const size = this.#size + this.#bytes;
      if (this.#uploadId === null) {
        const body = this.#takeBuffered();
        await this.#t.client.send(new PutObjectCommand({ Bucket: this.#t.bucket, Key: this.#t.key, Body: body, ContentLength: body.length, Metadata: { [SHA256_META]: sha256 } }), this.#signal);
      } else {
        if (this.#bufferedBytes > 0) this.#sendPart();
        while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
        if (this.#failure !== null) throw this.#failure;
        const UploadId = await this.#uploadId;
        const parts = [...this.#parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
        const done = await this.#t.client.send(new CompleteMultipartUploadCommand({ Bucket: this.#t.bucket, Key: this.#t.key, UploadId, MultipartUpload: { Parts: parts } }), this.#signal);
        await this.#recordDigest(sha256, size, done.ETag);
      }
      this.#phase = 'done';
      return { bytes: this.#bytes, size, sha256 };
    } catch (err) {
      throw toS3Error(err);
    }
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

/** CopySource: "bucket/key" with the key URL-encoded, its slashes kept. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
}
