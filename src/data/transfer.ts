import { Transform, type Readable, type Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FtpError } from '../errors.js';
import type { DataConnection } from './data-connection.js';

export interface TransferLimits {
  /** Abort when no byte moved for this long. */
  stallTimeoutMs: number;
  /** 0: unlimited. */
  bytesPerSecond: number;
}

export interface TransferOutcome {
  bytes: number;
  ms: number;
}

/** Bytes moved so far, kept up to date while the transfer runs: an interrupted transfer still knows its count. */
export interface TransferProgress {
  bytes: number;
}

/**
 * Counts bytes, watches for stalls and applies the bandwidth limit in one pass-through. The stall timer is one
 * re-armed timeout, not a poll.
 */
class Meter extends Transform {
  bytes = 0;
  readonly #limits: TransferLimits;
  readonly #progress: TransferProgress | undefined;
  readonly #start = Date.now();
  #stallTimer: NodeJS.Timeout;

  constructor(limits: TransferLimits, highWaterMark: number, progress?: TransferProgress) {
    super({ highWaterMark, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
    this.#limits = limits;
    this.#progress = progress;
    this.#stallTimer = setTimeout(() => this.#stalled(), limits.stallTimeoutMs).unref();
  }

  #stalled(): void {
    this.destroy(new FtpError(426, 'Connection closed; transfer aborted: no data moved within the stall timeout', { reason: 'transfer_stalled' }));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#progress !== undefined) this.#progress.bytes = this.bytes;
    this.#stallTimer.refresh();
    const rate = this.#limits.bytesPerSecond;
    if (rate > 0) {
      // Hold the chunk until the average rate since the start is back under the limit.
      const dueMs = (this.bytes / rate) * 1000 - (Date.now() - this.#start);
      if (dueMs > 1) {
        setTimeout(() => cb(null, chunk), dueMs).unref();
        return;
      }
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    clearTimeout(this.#stallTimer);
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.#stallTimer);
    cb(err);
  }
}

/** File (or listing) to client. Ends the data connection with close_notify so the client knows it got everything. */
export async function sendToClient(source: Readable, conn: DataConnection, limits: TransferLimits, signal: AbortSignal, chunkBytes: number, progress?: TransferProgress): Promise<TransferOutcome> {
  const start = Date.now();
  const meter = new Meter(limits, chunkBytes, progress);
  await pipeline(source, meter, conn.stream, { signal });
  return { bytes: meter.bytes, ms: Date.now() - start };
}

/**
 * Client to file. Resolves only for a complete upload: the stream ended and, over TLS, the client closed the TLS
 * session properly; otherwise throws 426 and the caller discards the upload.
 */
export async function receiveFromClient(conn: DataConnection, sink: Writable, limits: TransferLimits, signal: AbortSignal, chunkBytes: number, progress?: TransferProgress): Promise<TransferOutcome> {
  const start = Date.now();
  const meter = new Meter(limits, chunkBytes, progress);
  await pipeline(conn.stream, meter, sink, { signal, end: true });
  if (!conn.endedCleanly()) {
    throw new FtpError(426, 'Connection closed; transfer aborted: data connection ended without TLS close_notify (upload may be truncated)', { reason: 'truncated_upload' });
  }
  return { bytes: meter.bytes, ms: Date.now() - start };
}
