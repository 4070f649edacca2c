import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { canonicalIp } from './cidr.js';

// The bans file: what `ftpsd ban` edits and what a restarted server (or another node on shared storage) reads back.
// Times are ISO strings so the file stays readable and editable by hand.

export interface BanRecord {
  ip: string;
  /** Epoch milliseconds. */
  until: number;
  reason: string;
  /** How many bans this IP has had, this one included. */
  offences: number;
}

export interface OffenceRecord {
  ip: string;
  count: number;
  /** Epoch milliseconds of the latest ban. */
  lastBanAt: number;
}

export interface BanFileState {
  bans: BanRecord[];
  offences: OffenceRecord[];
}

/** The addresses one write changes: present ones are stored as given, removed ones deleted. */
export interface BanChanges {
  bans: BanRecord[];
  removedBans: string[];
  offences: OffenceRecord[];
  removedOffences: string[];
}

/** Where the defender keeps bans: the store (the server, `ftpsd ban`) or a file. A file answers synchronously. */
export interface BanPersistence {
  /** For log lines: the file or the store's location. */
  readonly describe: string;
  load(now: number): BanFileState | Promise<BanFileState>;
  save(changes: BanChanges, now: number): void | Promise<void>;
}

/**
 * A bans file as persistence: each save reads the file, applies the changed addresses and writes it back, so what
 * another process wrote for other addresses is kept; a file that does not parse is never overwritten.
 */
export function fileBanPersistence(file: string): BanPersistence {
  return {
    describe: file,
    load: (now) => readBanFile(file, now),
    save(changes, now) {
      const state = readBanFile(file, now);
      const drop = new Set([...changes.removedBans, ...changes.bans.map((b) => b.ip)]);
      const dropOffences = new Set([...changes.removedOffences, ...changes.offences.map((o) => o.ip)]);
      writeBanFile(file, {
        bans: [...state.bans.filter((b) => !drop.has(b.ip)), ...changes.bans],
        offences: [...state.offences.filter((o) => !dropOffences.has(o.ip)), ...changes.offences],
      });
    },
  };
}

export class BanFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'BanFileError';
  }
}

const FILE_VERSION = 1;

/**
 * Reads the bans file. A missing file is an empty state; expired bans and entries with unparsable addresses or times
 * are skipped, so a hand edit gone wrong loses that entry, not the whole list. Invalid JSON is an error: overwriting
 * it would destroy whatever the administrator meant to write.
 */
export function readBanFile(file: string, now: number): BanFileState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { bans: [], offences: [] };
    throw new BanFileError(file, `cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (text.trim() === '') return { bans: [], offences: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BanFileError(file, 'is not valid JSON', { cause: err });
  }
  const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as { bans?: unknown; offences?: unknown };
  const bans: BanRecord[] = [];
  for (const entry of Array.isArray(obj.bans) ? obj.bans : []) {
    const e = entry as Record<string, unknown>;
    const ip = typeof e.ip === 'string' ? canonicalIp(e.ip) : null;
    const until = typeof e.until === 'string' ? Date.parse(e.until) : NaN;
    if (ip === null || !Number.isFinite(until) || until <= now) continue;
    bans.push({ ip, until, reason: typeof e.reason === 'string' ? e.reason : '', offences: positiveCount(e.offences) });
  }
  const offences: OffenceRecord[] = [];
  for (const entry of Array.isArray(obj.offences) ? obj.offences : []) {
    const e = entry as Record<string, unknown>;
    const ip = typeof e.ip === 'string' ? canonicalIp(e.ip) : null;
    const lastBanAt = typeof e.lastBanAt === 'string' ? Date.parse(e.lastBanAt) : NaN;
    if (ip === null || !Number.isFinite(lastBanAt)) continue;
    offences.push({ ip, count: positiveCount(e.count), lastBanAt });
  }
  return { bans, offences };
}

/** Writes the whole state atomically: a temporary file in the same directory, then rename over the old one. */
export function writeBanFile(file: string, state: BanFileState): void {
  const body = {
    version: FILE_VERSION,
    bans: state.bans.map((b) => ({ ip: b.ip, until: new Date(b.until).toISOString(), reason: b.reason, offences: b.offences })),
    offences: state.offences.map((o) => ({ ip: o.ip, count: o.count, lastBanAt: new Date(o.lastBanAt).toISOString() })),
  };
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${process.pid}.${Date.now()}.bans.tmp`);
  try {
    writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new BanFileError(file, `cannot be written: ${(err as Error).message}`, { cause: err });
  }
}

/** defender.file, or bans.json beside users.file when empty; relative paths resolve against baseDir. */
export function resolveBansFile(config: Pick<Config, 'defender' | 'users'>, baseDir: string): string {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  if (config.defender.file !== '') return abs(config.defender.file);
  return join(dirname(abs(config.users.file)), 'bans.json');
}

function positiveCount(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 1;
}
