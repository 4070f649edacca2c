import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../log/logger.js';
import { AuditError, checkpointHmac, GENESIS_HASH, loadOrCreateHmacKey, recordHash, RESERVED_FIELDS } from './chain.js';

// The audit trail: one JSON line per event, hash-chained, with HMAC checkpoints. One writer appends in order to a
// single O_APPEND descriptor; rotation renames the file and starts the next one with a record that links back.
//
// Records are written with a synchronous write at the end of the current turn of the event loop, all records of that
// turn in one write: an append to a local file lands in the page cache in microseconds, where a trip through libuv's
// thread pool per batch cost several times that (a transfer writes one or two records). Like the log, the file is
// not fsynced per record.

export interface AuditLogOptions {
  file: string;
  /** Created with 32 random bytes (mode 0600) when missing. */
  hmacKeyFile: string;
  /** A checkpoint record follows every this many records. */
  checkpointEvery: number;
  /** When the file reaches this size, it is renamed to <file>.<timestamp> and a new one started. */
  rotateBytes: number;
  log?: Logger;
  /** Clock, for tests. */
  now?: () => Date;
}

export interface AppendResult {
  seq: number;
  hash: string;
}

type QueueItem = { kind: 'line'; text: string } | { kind: 'rotate'; to: string };

/**
 * How far back from the end of an existing file the last record is looked for. Records are a few hundred bytes;
 * this bounds the read at startup if the file ends in something that is not a record.
 */
const MAX_TAIL_SCAN_BYTES = 16 * 1024 * 1024;
const TAIL_CHUNK_BYTES = 64 * 1024;
/** Written by the log itself; an append with one of these names would confuse the verifier. */
const RESERVED_EVENTS: readonly string[] = ['checkpoint', 'rotate'];

export class AuditLog {
  readonly #file: string;
  readonly #key: Buffer;
  readonly #checkpointEvery: number;
  readonly #rotateBytes: number;
  readonly #log: Logger | undefined;
  readonly #now: () => Date;
  #seq = 0;
  #lastHash = GENESIS_HASH;
  #lastWasCheckpoint = true;
  /** Bytes the current file will hold once the queue is written; decides rotation without waiting for the disk. */
  #size = 0;
  #sinceCheckpoint = 0;
  #rotateBase = '';
  #rotateSuffix = 0;
  readonly #queue: QueueItem[] = [];
  #drainScheduled = false;
  #fd: number | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: AuditLogOptions) {
    this.#file = options.file;
    this.#checkpointEvery = options.checkpointEvery;
    this.#rotateBytes = options.rotateBytes;
    this.#log = options.log;
    this.#now = options.now ?? (() => new Date());
    this.#key = loadOrCreateHmacKey(options.hmacKeyFile);
    mkdirSync(dirname(this.#file), { recursive: true });
    this.#resumeChain();
    // A restart may follow a crash that left records without a checkpoint after them; cover them now.
    if (this.#seq > 0 && !this.#lastWasCheckpoint) this.#checkpoint();
  }

  /** Appends `{seq, time, event, ...fields, prev, hash}`. Written in call order; see flush() to wait for the disk. */
  append(event: string, fields: Record<string, unknown> = {}): AppendResult {
    if (this.#closing !== null) throw new AuditError('audit log is closed');
    for (const key of RESERVED_FIELDS) {
      if (Object.hasOwn(fields, key)) throw new TypeError(`audit field name "${key}" is reserved`);
    }
    if (RESERVED_EVENTS.includes(event)) throw new TypeError(`audit event name "${event}" is reserved`);
    if (this.#size >= this.#rotateBytes) this.#rotate();
    const result = this.#write({ event, ...fields });
    if (this.#sinceCheckpoint >= this.#checkpointEvery) this.#checkpoint();
    return result;
  }

  /** Resolves once everything appended so far has been handed to the operating system. */
  async flush(): Promise<void> {
    this.#drain();
  }

  /** Writes a final checkpoint, flushes and closes the file. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.#sinceCheckpoint > 0) this.#checkpoint();
    this.#drain();
    this.#closeFile();
    this.#closing = Promise.resolve();
    return this.#closing;
  }

  get file(): string {
    return this.#file;
  }

  /** Sequence number and hash of the last record written (0 and the genesis hash for a new chain). */
  get head(): AppendResult {
    return { seq: this.#seq, hash: this.#lastHash };
  }

  #write(body: Record<string, unknown>): AppendResult {
    const seq = this.#seq + 1;
    const record = { seq, time: this.#now().toISOString(), ...body, prev: this.#lastHash };
    let text: string;
    let hash: string;
    if (isFlat(record)) {
      // The usual record (strings, finite numbers, booleans): it is already what a reader parses back, less its
      // undefined fields, which JSON.stringify and canonicalJson both leave out. Serialised once for the file.
      hash = recordHash(record);
      const json = JSON.stringify(record);
      text = `${json.slice(0, -1)},"hash":"${hash}"}\n`;
    } else {
      // A JSON round trip gives the exact value a reader will parse back (dates as strings, undefined dropped), so
      // the hash computed here is the hash the verifier recomputes.
      const normalised = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
      hash = recordHash(normalised);
      text = `${JSON.stringify({ ...normalised, hash })}\n`;
    }
    this.#seq = seq;
    this.#lastHash = hash;
    this.#lastWasCheckpoint = body.event === 'checkpoint';
    this.#sinceCheckpoint = this.#lastWasCheckpoint ? 0 : this.#sinceCheckpoint + 1;
    this.#size += Buffer.byteLength(text);
    this.#enqueue({ kind: 'line', text });
    return { seq, hash };
  }

  #checkpoint(): void {
    // The HMAC covers the hash of the record before, which covers everything before it through the chain.
    this.#write({ event: 'checkpoint', upto: this.#seq, hmac: checkpointHmac(this.#key, this.#lastHash) });
  }

  #rotate(): void {
    const to = this.#rotatedName();
    const previousHash = this.#lastHash;
    this.#enqueue({ kind: 'rotate', to });
    this.#size = 0;
    this.#write({ event: 'rotate', previousFile: basename(to), previousHash });
  }

  #rotatedName(): string {
    const base = `${this.#file}.${this.#now().toISOString().replace(/[:.]/g, '-')}`;
    // Several rotations within one millisecond (a tiny rotateBytes) or a leftover file get a numeric suffix. The
    // rename of an earlier rotation may still be queued, so names handed out are remembered, not just looked up.
    this.#rotateSuffix = base === this.#rotateBase ? this.#rotateSuffix + 1 : 0;
    this.#rotateBase = base;
    let name = this.#rotateSuffix === 0 ? base : `${base}-${this.#rotateSuffix}`;
    for (let n = 0; n < 10_000 && existsSync(name); n++) name = `${base}-${++this.#rotateSuffix}`;
    return name;
  }

  #enqueue(item: QueueItem): void {
    this.#queue.push(item);
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => this.#drain());
  }

  #drain(): void {
    this.#drainScheduled = false;
    for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
      try {
        if (item.kind === 'line') this.#writeLine(this.#takeLines(item.text));
        else this.#rotateFile(item.to);
      } catch (err) {
        this.#log?.error({ err, file: this.#file }, 'audit write failed');
      }
    }
  }

  /** `first` and the lines queued right after it, up to the next rotation: one write for records appended together. */
  #takeLines(first: string): string {
    let text = first;
    while (this.#queue[0]?.kind === 'line') text += (this.#queue.shift() as { text: string }).text;
    return text;
  }

  #writeLine(text: string): void {
    this.#fd ??= openSync(this.#file, 'a', 0o640);
    const bytes = Buffer.from(text, 'utf8');
    try {
      // A regular file takes the whole write unless the disk is full; the loop is bounded by the bytes left.
      for (let done = 0; done < bytes.length; ) done += writeSync(this.#fd, bytes, done, bytes.length - done);
    } catch (err) {
      // Reopened on the next record: a file removed or a disk replaced under the server does not stop the trail.
      this.#closeFile();
      throw err;
    }
  }

  #closeFile(): void {
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already gone: nothing was pending on it (every write is synchronous)
      }
    }
  }

  #rotateFile(to: string): void {
    this.#closeFile();
    renameSync(this.#file, to);
    this.#log?.info({ event: 'audit_rotate', file: this.#file, rotatedTo: to }, 'audit file rotated');
  }

  /** Continues the chain from the last record of an existing file. */
  #resumeChain(): void {
    let fd: number;
    try {
      fd = openSync(this.#file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new AuditError(`audit file ${this.#file} cannot be opened: ${(err as Error).message}`, { cause: err });
    }
    try {
      const size = fstatSync(fd).size;
      const { line, end } = readLastLine(fd);
      if (size === 0) return;
      let last: Record<string, unknown> = {};
      if (line !== null) {
        try {
          last = JSON.parse(line) as Record<string, unknown>;
        } catch {
          // reported below
        }
      } else if (end !== 0 || size >= MAX_TAIL_SCAN_BYTES) {
        throw new AuditError(`audit file ${this.#file} ends with a line longer than ${MAX_TAIL_SCAN_BYTES} bytes; move it aside to start a new chain`);
      }
      if (line !== null && (!Number.isInteger(last.seq) || typeof last.hash !== 'string')) {
        throw new AuditError(`audit file ${this.#file} does not end with an audit record; move it aside to start a new chain`);
      }
      if (end < size) {
        // A crash mid-append leaves a partial last line. It was never a complete record; dropping it keeps the
        // next record on its own line. The bytes go to the main log so nothing disappears silently.
        const torn = Buffer.alloc(Math.min(size - end, 4096));
        readSync(fd, torn, 0, torn.length, end);
        if (torn[0] !== 0x7b /* { */) {
          throw new AuditError(`audit file ${this.#file} ends with text that is not an audit record; move it aside to start a new chain`);
        }
        this.#log?.warn({ event: 'audit_torn_tail', file: this.#file, bytes: size - end, start: torn.toString('utf8') }, 'audit file had a partial last record; removed');
        ftruncateSync(fd, end);
      }
      this.#size = end;
      if (line === null) return; // only a torn first record, now removed: a new chain
      this.#seq = last.seq as number;
      this.#lastHash = last.hash as string;
      this.#lastWasCheckpoint = last.event === 'checkpoint';
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * The last newline-terminated line of the file (without its newline) and the offset just after it; a trailing
 * fragment with no newline is not part of it. `end` is 0 when the file holds no newline at all. `line` is null when
 * the file is empty or no line start was found within MAX_TAIL_SCAN_BYTES.
 */
function readLastLine(fd: number): { line: string | null; end: number } {
  const size = fstatSync(fd).size;
  let buf = Buffer.alloc(0);
  let pos = size;
  let end = -1;
  while (pos > 0 && size - pos < MAX_TAIL_SCAN_BYTES) {
    const len = Math.min(TAIL_CHUNK_BYTES, pos);
    pos -= len;
    const chunk = Buffer.alloc(len);
    readSync(fd, chunk, 0, len, pos);
    buf = Buffer.concat([chunk, buf]);
    if (end === -1) {
      const nl = buf.lastIndexOf(0x0a);
      if (nl === -1) continue;
      end = pos + nl + 1;
    }
    const lineEnd = end - pos - 1; // index of the newline closing the last line
    const start = lineEnd === 0 ? -1 : buf.lastIndexOf(0x0a, lineEnd - 1);
    if (start !== -1 || pos === 0) return { line: buf.subarray(start + 1, lineEnd).toString('utf8'), end };
  }
  return { line: null, end: Math.max(end, 0) };
}

/** True when every field is a string, a finite number, a boolean, null or undefined: JSON keeps it as it is. */
function isFlat(record: Record<string, unknown>): boolean {
  for (const key in record) {
    const v = record[key];
    const t = typeof v;
    if (t === 'string' || t === 'boolean' || v === null || v === undefined) continue;
    if (t === 'number' && Number.isFinite(v)) continue;
    return false;
  }
  return true;
}
