import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FtpError } from '../errors.js';
import type { CommitJournal, CommitOptions, Upload, UploadResult } from './backend.js';

/** Where storage counts usage and first downloads (the store, in the server). */
export interface UsageLedger {
  /** Current usage of a scope; counted from the files under `root` when the scope has never been counted. */
  usage(scope: string, root: string): Promise<{ bytes: number; files: number }>;
  add(scope: string, delta: { bytes: number; files: number }, alsoInTransaction?: (trx: unknown) => Promise<void>): Promise<void>;
  /** Adds `delta` only if the scope stays within `limits` (null: none), atomically over every node; false if not. */
  reserve(scope: string, delta: { bytes: number; files: number }, limits: { bytes: number | null; files: number | null }): Promise<boolean>;
  /** A file (real path) was downloaded completely. */
  downloaded(realPath: string): Promise<void>;
}

export interface QuotaUploadOptions {
  /** Most bytes this upload may receive; null: no byte quota. */
  capBytes: number | null;
  /** The error the upload fails with once it would pass the cap (552). */
  onCapExceeded(): FtpError;
  /**
   * Called once every byte has arrived and before the file is put in place, with the bytes received (null when no
   * byte cap applies: then they are not counted on the way, and only the new file is reserved): counts the upload
   * against the quota (throwing the 552 when another upload, on any node, took the room meanwhile) and returns how
   * to settle that count once the commit succeeded, or undo it when the commit failed.
   */
  reserve(received: number | null): Promise<QuotaReservation>;
}

export interface QuotaReservation {
  /** The commit succeeded: corrects the count to the stored size (and writes the commit's journal in the same
   *  transaction); true when both were recorded. */
  settle(result: UploadResult, journal?: CommitJournal): Promise<boolean>;
  cancel(): Promise<void>;
}

/**
 * An upload cut off the moment it would pass its quota: the stream fails with 552, the transfer ends, and the
 * inner upload is aborted (nothing becomes visible). Commit counts the new size against the folder's usage.
 */
export class QuotaUpload implements Upload {
  readonly stream: Writable;
  readonly #inner: Upload;
  readonly #o: QuotaUploadOptions;
  readonly #piped: Promise<void>;
  #exceeded = false;
  /** Bytes received through the gate; null without a byte cap (no gate counts them). */
  #received: number | null = null;

  constructor(inner: Upload, opts: QuotaUploadOptions) {
    this.#inner = inner;
    this.#o = opts;
    const cap = opts.capBytes;
    if (cap === null) {
      // Nothing to cut off: the file stream itself, without a Transform stage and a pipeline per upload.
      this.stream = inner.stream;
      this.#piped = Promise.resolve();
      return;
    }
    this.#received = 0;
    const gate = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        const received = (this.#received ?? 0) + chunk.length;
        this.#received = received;
        if (received <= cap) return cb(null, chunk);
        this.#exceeded = true;
        cb(opts.onCapExceeded());
      },
    });
    this.stream = gate;
    // Settles once the inner file stream finished (or failed); commit waits for it.
    this.#piped = pipeline(gate, inner.stream);
    this.#piped.catch(() => undefined);
  }

  async commit(options?: CommitOptions): Promise<UploadResult> {
    await this.#piped;
    // Counted before the file appears: if the folder filled up meanwhile (on any node), the upload is refused and
    // never visible.
    let reservation: QuotaReservation;
    try {
      reservation = await this.#o.reserve(this.#received);
    } catch (err) {
      this.#exceeded = true;
      throw err;
    }
    let result: UploadResult;
    try {
      result = await this.#inner.commit(options?.check === undefined ? undefined : { check: options.check });
    } catch (err) {
      await reservation.cancel();
      throw err;
    }
    const journaled = await reservation.settle(result, options?.journal);
    return options?.journal === undefined ? result : { ...result, journaled };
  }

  async abort(keepPartial: boolean): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy();
    // Bytes over the quota are not kept for a REST either: they would fill the disk outside any count.
    await this.#inner.abort(keepPartial && !this.#exceeded);
  }
}
