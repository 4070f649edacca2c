import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { FtpError } from '../errors.js';

/**
 * SHA-256 of files being written or read, computed on worker threads instead of the event loop. A job names an open
 * file descriptor; the owner tells it how far the file is written (`extend`) and the worker reads that range back
 * from the page cache and hashes it. Hashing costs about 0.7 s of CPU per GiB here: on the event loop it slowed every
 * other session during a large upload (and a HASH of a large file stopped them outright).
 *
 * The digest is of the bytes as stored, which is what an audit record should name. The descriptor stays owned by the
 * caller, who must not close it before `digest()` or `drop()` has settled: the worker may still be reading it.
 */
export interface DigestJob {
  /** The file now holds its final bytes up to `end` (exclusive); hash up to there. Calls must not go backwards. */
  extend(end: number): void;
  /** Resolves with the hex SHA-256 of bytes [0, last extend) once the worker has read them all. */
  digest(): Promise<string>;
  /** Abandons the job; resolves once the worker no longer touches the descriptor. */
  drop(): Promise<void>;
}

/**
 * A file of at most this many bytes is read back and hashed on the calling thread when its digest is asked for: it
 * takes about 20 µs, where a round trip to the worker costs the event loop ten times that (two messages, their
 * events and promises) and the worker as much again. Larger files go to the worker as they grow.
 */
export const INLINE_DIGEST_MAX_BYTES = 64 * 1024;

type Request = { kind: 'extend'; id: number; fd: number; end: number } | { kind: 'digest'; id: number } | { kind: 'drop'; id: number };
type Response = { id: number; digest: string } | { id: number; dropped: true } | { id: number; error: string; code?: string };

/**
 * The worker's code, run with `eval` so that it loads the same way from the compiled server and from the TypeScript
 * sources under test. It keeps one hash per job and reads with a buffer of `chunkBytes`. Messages are handled in
 * order, so a digest request comes after every extend sent before it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(workerData.chunkBytes);
const jobs = new Map();
parentPort.on('message', (m) => {
  let job = jobs.get(m.id);
  if (m.kind === 'extend') {
    if (job === undefined) { job = { hash: createHash('sha256'), at: 0, error: null }; jobs.set(m.id, job); }
    if (job.error !== null) return;
    try {
      while (job.at < m.end) {
        const n = readSync(m.fd, buffer, 0, Math.min(buffer.length, m.end - job.at), job.at);
        if (n === 0) throw Object.assign(new Error('file shorter than written'), { code: 'ESHORT' });
        job.hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
        job.at += n;
      }
    } catch (err) {
      job.error = { error: String(err && err.message), code: err && err.code };
    }
    return;
  }
  jobs.delete(m.id);
  if (m.kind === 'drop') return parentPort.postMessage({ id: m.id, dropped: true });
  if (job === undefined) return parentPort.postMessage({ id: m.id, digest: createHash('sha256').digest('hex') });
  if (job.error !== null) return parentPort.postMessage({ id: m.id, ...job.error });
  parentPort.postMessage({ id: m.id, digest: job.hash.digest('hex') });
});
`;

interface Waiter {
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
}

/** One worker thread, started at its first job; a crashed one is replaced at the next job. */
class DigestWorker {
  #worker: Worker | null = null;
  readonly #waiters = new Map<number, Waiter>();
  readonly #chunkBytes: number;

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
  }

  get load(): number {
    return this.#waiters.size;
  }

  send(req: Request): void {
    this.#ensure().postMessage(req);
  }

  request(req: Request & { kind: 'digest' | 'drop' }): Promise<Response> {
    const worker = this.#ensure();
    // Someone awaits an answer: the worker must keep the process alive until it comes.
    if (this.#waiters.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.#waiters.set(req.id, { resolve, reject });
      worker.postMessage(req);
    });
  }

  #ensure(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { chunkBytes: this.#chunkBytes } });
    worker.on('message', (r: Response) => {
      const w = this.#waiters.get(r.id);
      this.#waiters.delete(r.id);
      if (this.#waiters.size === 0) worker.unref();
      w?.resolve(r);
    });
    const fail = (err: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      for (const w of this.#waiters.values()) w.reject(err);
      this.#waiters.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`digest worker exited with code ${code}`)));
    // An idle worker must not keep the process alive (unref after the listeners: adding them refs the worker again).
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    if (worker !== null) await worker.terminate();
  }
}

/** The SHA-256 of bytes [0, end) of `fd`, read back on this thread (small files only: see INLINE_DIGEST_MAX_BYTES). */
function hashInline(fd: number, end: number): string {
  const hash = createHash('sha256');
  if (end > 0) {
    const buffer = Buffer.allocUnsafe(end);
    let at = 0;
    while (at < end) {
      const n = readSync(fd, buffer, at, end - at, at);
      if (n === 0) throw Object.assign(new Error('file shorter than written'), { code: 'ESHORT' });
      at += n;
    }
    hash.update(buffer);
  }
  return hash.digest('hex');
}

export class DigestPool {
  readonly #workers: DigestWorker[];
  readonly #batchBytes: number;
  #nextId = 1;
  #closed = false;

  /** `workers`: limits.digestWorkers; `chunkBytes`: how much a worker reads at a time. */
  constructor(workers: number, chunkBytes: number) {
    this.#workers = Array.from({ length: Math.max(1, workers) }, () => new DigestWorker(chunkBytes));
    this.#batchBytes = chunkBytes;
  }

  /** A job on an open descriptor; every job of one upload runs on the same worker, the least busy one. */
  job(fd: number): DigestJob {
    if (this.#closed) throw new FtpError(421, 'Server shutting down', { reason: 'stopping' });
    const id = this.#nextId++;
    const worker = this.#workers.reduce((a, b) => (b.load < a.load ? b : a));
    let end = 0;
    let sent = 0;
    let settled: Promise<unknown> | null = null;
    /** Set once an extend went to the worker: from then on the job is the worker's. */
    let onWorker = false;
    // One message per `batchBytes` written, not per write: a message costs about as much as hashing 4 KiB.
    const send = () => {
      if (end > sent) {
        worker.send({ kind: 'extend', id, fd, end });
        onWorker = true;
      }
      sent = end;
    };
    const batchBytes = this.#batchBytes;
    return {
      extend(to: number) {
        if (settled !== null || to <= end) return;
        end = to;
        if (end - sent >= batchBytes) send();
      },
      async digest() {
        if (settled !== null) throw new Error('digest job already finished');
        if (!onWorker && end <= INLINE_DIGEST_MAX_BYTES) {
          settled = Promise.resolve();
          return hashInline(fd, end);
        }
        send();
        const reply = worker.request({ kind: 'digest', id });
        settled = reply;
        const r = await reply;
        if ('digest' in r) return r.digest;
        if ('error' in r) throw Object.assign(new Error(r.error), { code: r.code });
        throw new Error('digest job dropped');
      },
      async drop() {
        if (settled !== null) {
          await settled.catch(() => undefined);
          return;
        }
        // The worker never saw this job: nothing to let go of.
        if (!onWorker) {
          settled = Promise.resolve();
          return;
        }
        settled = worker.request({ kind: 'drop', id });
        await settled.catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.close()));
  }
}
