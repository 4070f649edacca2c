import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';

// What the writer and the verifier must agree on: how a record is hashed, how a checkpoint is authenticated, and
// where the key lives. Each record's hash covers the previous record's hash, so altering, removing or reordering
// a record breaks every later link; the HMAC checkpoints stop someone who rewrites the whole tail with fresh hashes,
// since that takes the key, which is kept outside the log directory.

/** prev of the very first record of a chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** Keys every record carries; fields passed to append may not use them. */
export const RESERVED_FIELDS = ['seq', 'time', 'event', 'prev', 'hash'] as const;

const KEY_BYTES = 32;
/** Shorter keys are refused: a guessable key would make the checkpoints forgeable. */
const MIN_KEY_BYTES = 16;

export class AuditError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditError';
  }
}

/** JSON with object keys sorted at every level and no whitespace: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(obj[key])}`);
  }
  return `{${parts.join(',')}}`;
}

/** sha256(prev + canonical JSON of the record without its hash), hex. */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = record;
  const prev = typeof record.prev === 'string' ? record.prev : '';
  return createHash('sha256').update(prev).update(canonicalJson(rest)).digest('hex');
}

export function checkpointHmac(key: Buffer, hash: string): string {
  return createHmac('sha256', key).update(hash).digest('hex');
}

export function hmacMatches(key: Buffer, hash: string, hmac: string): boolean {
  const expected = Buffer.from(checkpointHmac(key, hash), 'hex');
  const given = Buffer.from(hmac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Reads the checkpoint key. The file holds the key as hex (what this program writes, easy to copy between machines)
 * or, failing that, is used byte for byte.
 */
export function readHmacKey(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new AuditError(`audit key file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const text = raw.toString('latin1').trim();
  const key = /^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : raw;
  if (key.length < MIN_KEY_BYTES) throw new AuditError(`audit key file ${file} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed`);
  return key;
}

/** Reads the key, creating it (32 random bytes, mode 0600, in a 0700 directory if new) when the file is missing. */
export function loadOrCreateHmacKey(file: string): Buffer {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    // 'wx' fails if the file exists, so two processes starting together never overwrite each other's key.
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AuditError(`audit key file ${file} cannot be created: ${(err as Error).message}`, { cause: err });
    }
  }
  return readHmacKey(file);
}

/** Stands for the node id (cluster.nodeId) in log.auditFile, so nodes sharing a folder each keep their own chain. */
export const NODE_PLACEHOLDER = '{node}';

/**
 * log.auditFile (with {node} replaced by `nodeId`) and the key file resolved against baseDir; null when auditing to
 * a file is off.
 */
export function resolveAuditPaths(config: Pick<Config, 'log' | 'users'>, baseDir: string, nodeId = ''): { file: string; hmacKeyFile: string } | null {
  if (config.log.auditFile === '') return null;
  return { file: absolute(baseDir, config.log.auditFile.replaceAll(NODE_PLACEHOLDER, nodeId)), hmacKeyFile: resolveAuditKeyFile(config, baseDir) };
}

/**
 * log.auditHmacKeyFile, or audit.key beside the users file when empty: outside the log directory, so whoever can
 * rewrite the logs does not automatically hold the key too.
 */
export function resolveAuditKeyFile(config: Pick<Config, 'log' | 'users'>, baseDir: string): string {
  if (config.log.auditHmacKeyFile !== '') return absolute(baseDir, config.log.auditHmacKeyFile);
  return join(dirname(absolute(baseDir, config.users.file)), 'audit.key');
}

function absolute(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}
