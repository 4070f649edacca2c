import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { GENESIS_HASH, NODE_PLACEHOLDER, hmacMatches, readHmacKey, recordHash } from './chain.js';

// Checks an audit file, or a run of rotated files, record by record and reports the first problem: an altered
// record (its hash no longer matches), a removed one (a gap in seq), a broken link (prev is not the hash before),
// a checkpoint whose HMAC does not verify, or a line that is not a record.

export type VerifyResult =
  | {
      ok: true;
      /** Records other than checkpoints. */
      records: number;
      checkpoints: number;
      /** False when no key was given: checkpoints were counted but their HMACs not checked. */
      checkpointsVerified: boolean;
      lastSeq: number;
      lastHash: string;
    }
  | { ok: false; file: string; line: number; seq?: number; problem: string };

export interface VerifyOptions {
  /** When set, more than this many records without a checkpoint is a problem (log.auditCheckpointEvery). */
  checkpointEvery?: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Verifies one file, or several rotated files given oldest first: each later file must begin with the rotate
 * record linking to the last hash of the one before. A key file enables the checkpoint HMAC check.
 */
export async function verifyAuditFile(files: string | readonly string[], hmacKeyFile?: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const list = typeof files === 'string' ? [files] : files;
  const key = hmacKeyFile === undefined ? null : readHmacKey(hmacKeyFile);
  let lastHash: string | null = null;
  let expectedSeq: number | null = null;
  let records = 0;
  let checkpoints = 0;
  let sinceCheckpoint = 0;

  for (const [fileIndex, file] of list.entries()) {
    let lineNo = 0;
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    try {
      for await (const text of lines) {
        lineNo++;
        const fail = (problem: string, seq?: number): VerifyResult => ({ ok: false, file, line: lineNo, ...(seq === undefined ? {} : { seq }), problem });
        if (text.trim() === '') return fail('empty line');
        let rec: Record<string, unknown>;
        try {
          const parsed: unknown = JSON.parse(text);
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('line is not a JSON object');
          rec = parsed as Record<string, unknown>;
        } catch {
          return fail('line is not valid JSON');
        }
        const { seq, prev, hash, event } = rec;
        if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1) return fail('record has no valid seq');
        if (typeof prev !== 'string' || !HEX64.test(prev) || typeof hash !== 'string' || !HEX64.test(hash)) {
          return fail('record has no valid prev/hash', seq);
        }
        if (expectedSeq !== null && seq !== expectedSeq) {
          return fail(
            seq > expectedSeq ? `seq gap: expected ${expectedSeq}, found ${seq} (records removed)` : `seq out of order: expected ${expectedSeq}, found ${seq}`,
            seq,
          );
        }
        if (recordHash(rec) !== hash) return fail('hash mismatch: the record was altered', seq);
        if (lastHash !== null && prev !== lastHash) return fail("prev does not match the previous record's hash: chain broken", seq);
        if (lastHash === null && seq === 1 && prev !== GENESIS_HASH) return fail('first record of the chain does not start from the genesis hash', seq);
        if (lineNo === 1 && fileIndex > 0 && event !== 'rotate') return fail('file does not begin with a rotate record linking it to the previous file', seq);
        if (event === 'rotate' && rec.previousHash !== prev) return fail('rotate record previousHash differs from prev', seq);

        if (event === 'checkpoint') {
          checkpoints++;
          sinceCheckpoint = 0;
          if (key !== null) {
            if (rec.upto !== seq - 1 || typeof rec.hmac !== 'string' || !hmacMatches(key, prev, rec.hmac)) {
              return fail('checkpoint HMAC does not verify: wrong key, or records before it were rewritten', seq);
            }
          }
        } else {
          records++;
          sinceCheckpoint++;
          if (options.checkpointEvery !== undefined && sinceCheckpoint > options.checkpointEvery) {
            return fail(`more than ${options.checkpointEvery} records without a checkpoint (checkpoints removed?)`, seq);
          }
        }
        lastHash = hash;
        expectedSeq = seq + 1;
      }
    } catch (err) {
      return { ok: false, file, line: lineNo, problem: `cannot be read: ${(err as Error).message}` };
    } finally {
      lines.close();
    }
  }
  return { ok: true, records, checkpoints, checkpointsVerified: key !== null, lastSeq: (expectedSeq ?? 1) - 1, lastHash: lastHash ?? GENESIS_HASH };
}

/**
 * Puts audit files in chain order by the seq of their first record, so a shell glob such as `audit.log*` (which
 * sorts the current file before the rotated ones) can be passed as is. Unreadable files keep their place at the end.
 */
export async function orderAuditFiles(files: readonly string[]): Promise<string[]> {
  const firstSeq = await Promise.all(files.map((f) => readFirstSeq(f)));
  return files
    .map((file, i) => ({ file, seq: firstSeq[i] ?? null, i }))
    .sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.i - b.i)
    .map((e) => e.file);
}

async function readFirstSeq(file: string): Promise<number | null> {
  let handle;
  try {
    handle = await open(file, 'r');
    const buf = Buffer.alloc(256);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const m = /^\{"seq":(\d+)/.exec(buf.subarray(0, bytesRead).toString('utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  } finally {
    await handle?.close();
  }
}

/** `<file>.<ISO time with - for : and .>[-N]`: the name AuditLog gives a rotated file. */
const ROTATED_SUFFIX = /\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(?:-\d+)?$/;

/**
 * Splits audit files into chains: a file and its rotated predecessors form one (each node of a cluster writes its own,
 * `audit-<node>.log`). Keyed by the current file's name; each chain is put in order.
 */
export async function groupAuditChains(files: readonly string[]): Promise<Map<string, string[]>> {
  const groups = new Map<string, string[]>();
  for (const f of files) {
    const key = f.replace(ROTATED_SUFFIX, '');
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const ordered = new Map<string, string[]>();
  for (const key of [...groups.keys()].sort()) ordered.set(key, await orderAuditFiles(groups.get(key)!));
  return ordered;
}

/**
 * Every audit file the configured log.auditFile names, for every node: with {node} in it, each node's file and its
 * rotations in that folder; without, the file and its rotations.
 */
export async function configuredAuditFiles(template: string): Promise<string[]> {
  const dir = dirname(template);
  const name = basename(template);
  const [before, after] = name.includes(NODE_PLACEHOLDER) ? name.split(NODE_PLACEHOLDER, 2) as [string, string] : [name, null];
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escape(before)}${after === null ? '' : `[A-Za-z0-9._-]+${escape(after)}`}(?:${ROTATED_SUFFIX.source.slice(0, -1)})?$`);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  return entries.filter((e) => pattern.test(e)).sort().map((e) => join(dir, e));
}
