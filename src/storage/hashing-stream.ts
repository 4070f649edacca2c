import { Writable } from 'node:stream';
import { fsErrorToFtp } from '../errors.js';
import type { Descriptor } from './descriptor.js';
import type { DigestJob } from './digest-pool.js';

/**
 * A Writable that stores what it receives in an open file at consecutive positions and, as each write completes,
 * tells the file's digest job how far the file is written (a worker hashes it from there). It does the job of
 * `fs.createWriteStream` (the Writable core buffers up to `highWaterMark` while a write is
 * in flight and hands the whole batch to `_writev`, one `pwritev` per batch) without a second stream stage, so
 * upload bytes cross one buffer, not two.
 *
 * The descriptor stays owned by the caller: this stream never closes it. `Descriptor.close()` waits for the
 * descriptor's pending writes, so the owner can close it safely even while a write is still in flight after
 * `destroy()` (a number closed under a pending write could be reused and written into another file). The writes
 * themselves go through the thread pool: unlike opens and stats, they may wait for the disk.
 *
 * Except for small files: up to `syncWriteMaxBytes` (storage.syncIoMaxBytes) received bytes are held, not written,
 * and an upload that ends holding them writes them with one call on the event loop. A 4 KiB upload then costs no
 * pool trip for its bytes (the trip costs more CPU than the write). A larger upload goes to the pool as before once it
 * holds more; an aborted one writes what it holds before it reports 'close', so a kept partial has every byte received.
 */
export class HashingFileWriter extends Writable {
  readonly #file: Descriptor;
  readonly #digest: DigestJob;
  #position: number;
  #bytes = 0;
  #pending: Promise<void> | null = null;
  readonly #syncWriteMax: number;
  /** Received, not written yet: at most #syncWriteMax bytes, and only while no write is running on the pool. */
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(file: Descriptor, digest: DigestJob, startPosition: number, highWaterMark: number, syncWriteMaxBytes = 0) {
    super({ highWaterMark, decodeStrings: true });
    this.#file = file;
    this.#digest = digest;
    this.#position = startPosition;
    this.#syncWriteMax = syncWriteMaxBytes;
  }

  /** Bytes received and stored so far (not counting any prefix already in the file). */
  get bytesStored(): number {
    return this.#bytes;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#receive([chunk], chunk.length, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const buffers = new Array<Buffer>(chunks.length);
    let length = 0;
    for (let i = 0; i < chunks.length; i++) {
      const b = (chunks[i] as { chunk: Buffer }).chunk;
      buffers[i] = b;
      length += b.length;
    }
    this.#receive(buffers, length, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback(this.#writeHeld());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // An aborted upload may be kept as a partial: what was held goes into the file first (best effort). Nothing is
    // held while a write runs on the pool.
    this.#writeHeld();
    // Report 'close' only once no write is running, so the owner may then close or rename the file.
    if (this.#pending === null) callback(error);
    else this.#pending.then(() => callback(error), () => callback(error));
  }

  /**
   * Holds the chunks while everything held stays within the limit and no write runs on the pool; otherwise hands
   * what is held and the chunks to the pool as one write.
   */
  #receive(buffers: Buffer[], length: number, callback: (error?: Error | null) => void): void {
    if (this.#pending === null && this.#heldBytes + length <= this.#syncWriteMax) {
      this.#held.push(...buffers);
      this.#heldBytes += length;
      callback();
      return;
    }
    const all = this.#held.length === 0 ? buffers : this.#held.concat(buffers);
    const total = this.#heldBytes + length;
    this.#held = [];
    this.#heldBytes = 0;
    this.#store(all, total, callback);
  }

  /** Writes what is held, on the event loop; returns the error instead of throwing. */
  #writeHeld(): Error | null {
    if (this.#heldBytes === 0) return null;
    // At most syncIoMaxBytes: one buffer to write from costs less than a second write call.
    const data = this.#held.length === 1 ? (this.#held[0] as Buffer) : Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    const position = this.#position;
    try {
      // A regular file takes the whole write unless the disk is full (a short write first, then ENOSPC).
      for (let done = 0; done < data.length; ) {
        const n = this.#file.writeNow(data.subarray(done), position + done);
        if (n === 0) throw Object.assign(new Error('write stored no byte'), { code: 'EIO' });
        done += n;
      }
    } catch (err) {
      return fsErrorToFtp(err);
    }
    this.#position += data.length;
    this.#bytes += data.length;
    this.#digest.extend(position + data.length);
    return null;
  }

  #store(buffers: Buffer[], length: number, callback: (error?: Error | null) => void): void {
    const position = this.#position;
    this.#position += length;
    this.#pending = writeAll(this.#file, buffers, length, position);
    this.#pending.then(
      () => {
        this.#pending = null;
        this.#bytes += length;
        this.#digest.extend(position + length);
        callback();
      },
      (err: unknown) => {
        this.#pending = null;
        callback(fsErrorToFtp(err));
      },
    );
  }
}

/** pwritev until every byte is stored: a regular file may take a short write just before ENOSPC. */
async function writeAll(file: Descriptor, buffers: Buffer[], length: number, position: number): Promise<void> {
  const first = buffers.length === 1 ? await file.write(buffers[0] as Buffer, 0, length, position) : await file.writev(buffers, position);
  if (first === length) return;
  // Rare path: store the remainder buffer by buffer.
  let skip = first;
  let at = position + first;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    let offset = skip;
    skip = 0;
    while (offset < b.length) {
      const bytesWritten = await file.write(b, offset, b.length - offset, at);
      if (bytesWritten === 0) throw Object.assign(new Error('write stored no byte'), { code: 'EIO' });
      offset += bytesWritten;
      at += bytesWritten;
    }
  }
}
