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
    if (this.#hold([chunk], chunk.length)) callback();
    else this.#store(this.#release([chunk]), this.#heldBytes + chunk.length, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const buffers = new Array<Buffer>(chunks.length);
    let length = 0;
    for (let i = 0; i < chunks.length; i++) {
      const b = (chunks[i] as { chunk: Buffer }).chunk;
      buffers[i] = b;
      length += b.length;
    }
    if (this.#hold(buffers, length)) callback();
    else this.#store(this.#release(buffers), this.#heldBytes + length, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback(this.#writeHeld());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // An aborted upload may be kept as a partial: what was held goes into the file first (best effort).
    if (this.#pending === null) this.#writeHeld();
    // Report 'close' only once no write is running, so the owner may then close or rename the file.
    if (this.#pending === null) callback(error);
    else this.#pending.then(() => callback(error), () => callback(error));
  }

  /** Keeps the chunks when everything held stays within the limit (and nothing went to the pool yet). */
  #hold(buffers: Buffer[], length: number): boolean {
    if (this.#heldBytes + length > this.#syncWriteMax || this.#pending !== null) return false;
    for (const b of buffers) this.#held.push(b);
    this.#heldBytes += length;
    return true;
  }

  /** The held chunks followed by `buffers`, for one write; nothing is held afterwards (#heldBytes is reset by #store). */
  #release(buffers: Buffer[]): Buffer[] {
    if (this.#held.length === 0) return buffers;
    const all = this.#held.concat(buffers);
    this.#held = [];
    return all;
  }

  /** Writes what is held, on the event loop; returns the error instead of throwing. */
  #writeHeld(): Error | null {
    if (this.#heldBytes === 0) return null;
    const buffers = this.#held;
    const length = this.#heldBytes;
    this.#held = [];
    this.#heldBytes = 0;
    const position = this.#position;
    try {
      const written = this.#file.writevNow(buffers, position);
      // A short write (just before ENOSPC): the rest in further calls, as writeAll does on the pool.
      if (written < length) {
        const rest = Buffer.concat(buffers).subarray(written);
        for (let off = 0; off < rest.length; ) {
          const n = this.#file.writevNow([rest.subarray(off)], position + written + off);
          if (n === 0) throw Object.assign(new Error('write stored no byte'), { code: 'EIO' });
          off += n;
        }
      }
    } catch (err) {
      return fsErrorToFtp(err);
    }
    this.#position += length;
    this.#bytes += length;
    this.#digest.extend(position + length);
    return null;
  }

  #store(buffers: Buffer[], length: number, callback: (error?: Error | null) => void): void {
    this.#heldBytes = 0;
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
