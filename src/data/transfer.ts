import { read, readSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { FtpError } from '../errors.js';
import type { FileRange } from '../storage/backend.js';
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
 * Counts bytes, watches for stalls and paces to the bandwidth limit. The stall timer is one re-armed timeout, not a
 * poll. Not a stream stage: the transfer loops below call it, so a transfer costs no Transform and no pipeline()
 * (whose internal AbortController builds an AbortError with a stack trace at the end of every transfer).
 */
class TransferMeter {
  bytes = 0;
  readonly #limits: TransferLimits;
  readonly #progress: TransferProgress | undefined;
  readonly #start = Date.now();
  readonly #stallTimer: NodeJS.Timeout;

  constructor(limits: TransferLimits, progress: TransferProgress | undefined, onStall: (err: FtpError) => void) {
    this.#limits = limits;
    this.#progress = progress;
    this.#stallTimer = setTimeout(
      () => onStall(new FtpError(426, 'Connection closed; transfer aborted: no data moved within the stall timeout', { reason: 'transfer_stalled' })),
      limits.stallTimeoutMs,
    ).unref();
  }

  /** Counts `n` bytes that moved; returns how long to hold the next chunk so the average rate stays under the limit. */
  moved(n: number): number {
    this.bytes += n;
    if (this.#progress !== undefined) this.#progress.bytes = this.bytes;
    this.#stallTimer.refresh();
    const rate = this.#limits.bytesPerSecond;
    if (rate <= 0) return 0;
    const dueMs = (this.bytes / rate) * 1000 - (Date.now() - this.#start);
    return dueMs > 1 ? dueMs : 0;
  }

  stop(): void {
    clearTimeout(this.#stallTimer);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function abortError(): Error {
  return Object.assign(new Error('transfer aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Moves `source` into `sink` and ends `sink`; resolves with the byte count once `sink` has finished (everything it was
 * given is written). What pipeline() did for the transfers, with the meter folded in: an error or a premature close of
 * either side, a stall or the abort signal destroys both and rejects.
 */
function pump(source: Readable, sink: Writable, limits: TransferLimits, signal: AbortSignal, progress?: TransferProgress): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = false;
    // The source is paused while the sink wants a drain and while the rate limit holds it back.
    let holds = 0;
    const release = () => {
      if (--holds === 0 && !done) source.resume();
    };
    const finish = (err?: Error | null) => {
      if (done) return;
      done = true;
      meter.stop();
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', finish);
      source.off('close', onSourceClose);
      sink.off('drain', onDrain);
      sink.off('finish', onFinish);
      sink.off('error', finish);
      sink.off('close', onSinkClose);
      signal.removeEventListener('abort', onAbort);
      if (err) {
        source.destroy();
        sink.destroy();
        reject(err);
      } else resolve(meter.bytes);
    };
    const meter = new TransferMeter(limits, progress, finish);
    let waitingForDrain = false;
    const onDrain = () => {
      if (!waitingForDrain) return;
      waitingForDrain = false;
      release();
    };
    const onData = (chunk: Buffer) => {
      const holdMs = meter.moved(chunk.length);
      if (!sink.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        holds++;
      }
      if (holdMs > 0) {
        holds++;
        setTimeout(release, holdMs).unref();
      }
      if (holds > 0) source.pause();
    };
    // Set once the source ended and everything was handed to the sink.
    let ended = false;
    const onEnd = () => {
      ended = true;
      sink.end();
    };
    const onFinish = () => finish();
    const onSourceClose = () => {
      if (!source.readableEnded) finish(prematureClose());
    };
    const onSinkClose = () => {
      // A client that closes once it has read everything (curl knows the size of what it asked for) may do so before
      // our closing handshake completes: every byte was handed over, which is what the transfer promised.
      if (!sink.writableFinished) finish(ended ? null : prematureClose());
    };
    const onAbort = () => finish(abortError());
    if (signal.aborted) return finish(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    source.on('error', finish);
    source.on('close', onSourceClose);
    source.on('end', onEnd);
    sink.on('error', finish);
    sink.on('close', onSinkClose);
    sink.on('drain', onDrain);
    sink.on('finish', onFinish);
    // The source may have ended already (an empty upload whose close_notify came with the handshake: the TLS layer
    // reads to the end by itself) or been closed, and the sink too: their events are past.
    if (sink.destroyed || (source.destroyed && !source.readableEnded)) return finish(prematureClose());
    if (source.readableEnded) return onEnd();
    source.on('data', onData);
    source.resume();
  });
}

/** File (or listing) to client. Ends the data connection with close_notify so the client knows it got everything. */
export async function sendToClient(source: Readable, conn: DataConnection, limits: TransferLimits, signal: AbortSignal, _chunkBytes: number, progress?: TransferProgress): Promise<TransferOutcome> {
  const start = Date.now();
  const bytes = await pump(source, conn.stream, limits, signal, progress);
  return { bytes, ms: Date.now() - start };
}

/**
 * A local file to the client, binary: reads into two buffers of its own, alternately, each reused once the socket
 * has taken the chunk written from it, so that a large download allocates two buffers instead of one per chunk
 * (the garbage collector's share of a 1 GiB download) and a small one needs a single read and no stream at all. A
 * file of up to `syncReadMaxBytes` (storage.syncIoMaxBytes) is read on the event loop: one call, no thread-pool trip.
 * The descriptor stays owned by the caller; no read is running any more when this settles.
 */
export async function sendFileToClient(file: FileRange, conn: DataConnection, limits: TransferLimits, signal: AbortSignal, chunkBytes: number, progress?: TransferProgress, syncReadMaxBytes = 0): Promise<TransferOutcome> {
  const started = Date.now();
  const sink = conn.stream;
  // One more byte than the file holds: a file read whole in one go comes back short, which says it ended.
  const size = Math.max(1, Math.min(chunkBytes, file.size - file.start + 1));
  // The second buffer only once a second chunk is read: a small file needs one.
  const buffers: Array<Buffer | undefined> = [Buffer.allocUnsafeSlow(size), undefined];
  const readNow = size <= syncReadMaxBytes;
  const writes: Array<Promise<void> | null> = [null, null];
  let failure: Error | null = null;
  const fail = (err: Error) => {
    failure ??= err;
    sink.destroy();
  };
  const meter = new TransferMeter(limits, progress, fail);
  const onAbort = () => fail(abortError());
  const onClose = () => {
    if (!sink.writableFinished) fail(prematureClose());
  };
  signal.addEventListener('abort', onAbort, { once: true });
  sink.once('close', onClose);
  try {
    if (signal.aborted) throw abortError();
    let position = file.start;
    for (let i = 0; ; i ^= 1) {
      // The buffer is free again once the write that used it two chunks ago completed.
      await writes[i];
      if (failure !== null) throw failure;
      const buffer = (buffers[i] ??= Buffer.allocUnsafeSlow(size));
      const n = readNow ? readSync(file.fd, buffer, 0, buffer.length, position) : await readAt(file.fd, buffer, position);
      if (failure !== null) throw failure;
      if (n === 0) break;
      position += n;
      const holdMs = meter.moved(n);
      if (holdMs > 0) await sleep(holdMs);
      const write = writeChunk(sink, buffer.subarray(0, n));
      write.catch(() => undefined);
      writes[i] = write;
      // A regular file read short has ended.
      if (n < buffer.length) break;
    }
    await Promise.all(writes);
    if (failure !== null) throw failure;
    // Every byte was written. A client that closes now, before our closing handshake completes (curl, knowing the size
    // it asked for, may leave our close_notify unread and reset), has been handed the whole file, as vsftpd also
    // reports: the transfer is complete.
    sink.off('close', onClose);
    await new Promise<void>((resolve) => {
      sink.end(() => resolve());
      sink.once('close', () => resolve());
    });
    return { bytes: meter.bytes, ms: Date.now() - started };
  } catch (err) {
    sink.destroy();
    throw failure ?? err;
  } finally {
    meter.stop();
    signal.removeEventListener('abort', onAbort);
    sink.off('close', onClose);
  }
}

function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, buffer.length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function writeChunk(sink: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sink.write(chunk, (err?: Error | null) => (err ? reject(err) : resolve()));
  });
}

/**
 * Client to file. Resolves only for a complete upload: the stream ended and, over TLS, the client closed the TLS
 * session properly; otherwise throws 426 and the caller discards the upload.
 */
export async function receiveFromClient(conn: DataConnection, sink: Writable, limits: TransferLimits, signal: AbortSignal, _chunkBytes: number, progress?: TransferProgress): Promise<TransferOutcome> {
  const start = Date.now();
  const bytes = await pump(conn.stream, sink, limits, signal, progress);
  if (!conn.endedCleanly()) {
    throw new FtpError(426, 'Connection closed; transfer aborted: data connection ended without TLS close_notify (upload may be truncated)', { reason: 'truncated_upload' });
  }
  return { bytes, ms: Date.now() - start };
}
