import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationResultSet } from 'kysely';
import { withStatementCache } from './statement-cache.js';
import type { Config } from '../config/schema.js';
import { resolvePath } from '../config/load.js';
import { migrations, type Database, type Engine } from './schema.js';

/**
 * The data store: one Kysely instance over SQLite (embedded default, no setup) or PostgreSQL (store.url, for
 * several nodes), migrated to the newest schema when opened. Engines are loaded only when used.
 */
export interface Store {
  readonly db: Kysely<Database>;
  readonly engine: Engine;
  /** Where it is, for messages: the SQLite file or the PostgreSQL URL without its password. */
  readonly location: string;
  /**
   * The SQLite connection itself (engine 'sqlite' only), for the few statements on a per-transfer path worth running
   * without kysely, which builds and compiles every query anew (statement-cache.ts spares it only SQLite's prepare).
   */
  readonly sqlite?: BetterSqlite3.Database;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

export interface StoreOptions {
  /** SQLite database file (absolute, or relative to the working directory); ignored when url is set. */
  path: string;
  /** postgres:// URL; empty for SQLite. */
  url: string;
  maxConnections?: number;
}

/** store.path resolved against baseDir, or store.url. */
export function storeOptions(config: Pick<Config, 'store'>, baseDir: string): StoreOptions {
  return { path: resolvePath(baseDir, config.store.path), url: config.store.url, maxConnections: config.store.maxConnections };
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  const store = opts.url !== '' ? await openPostgres(opts.url, opts.maxConnections ?? 10) : await openSqlite(opts.path);
  try {
    await migrate(store);
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

async function openSqlite(path: string): Promise<Store> {
  let Sqlite: typeof import('better-sqlite3');
  try {
    Sqlite = (await import('better-sqlite3')).default;
  } catch (err) {
    throw new StoreError('the SQLite engine (better-sqlite3) is not built: run `npm rebuild better-sqlite3`', { cause: err });
  }
  mkdirSync(dirname(path), { recursive: true });
  const database = new Sqlite(path);
  // WAL: the CLI and the server (readers and one writer) use the file at once; busy_timeout makes a writer wait for
  // another's transaction instead of failing with SQLITE_BUSY.
  database.pragma('journal_mode = WAL');
  database.pragma('busy_timeout = 5000');
  // better-sqlite3 runs on the event loop: with WAL, NORMAL syncs at checkpoints instead of at every commit, so a
  // login's bookkeeping write does not hold up other sessions for an fsync (the database stays consistent; a power
  // cut may lose the last few commits, such as a last-login time).
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  return { db, engine: 'sqlite', location: path, sqlite: database, close: () => db.destroy() };
}

async function openPostgres(url: string, maxConnections: number): Promise<Store> {
  const pg = (await import('pg')).default;
  // int8 (counts, byte sizes, epoch milliseconds) as numbers: all stay far below 2^53.
  const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) };
  const pool = new pg.Pool({ connectionString: url, max: maxConnections, types: types as never });
  // An idle client losing its server (a restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, engine: 'postgres', location: redactUrl(url), close: () => db.destroy() };
}

async function migrate(store: Store): Promise<void> {
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: () => Promise.resolve(migrations(store.engine)) },
    migrationTableName: 'store_migrations',
    migrationLockTableName: 'store_migrations_lock',
    // Numbered migrations are written on parallel branches and independent of each other: a store that already ran a
    // higher number (0004) still takes a lower one merged later (0003) instead of refusing to open.
    allowUnorderedMigrations: true,
  });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new StoreError(`store ${store.location}: migration ${failed} failed: ${(result.error as Error).message}`, { cause: result.error });
  }
}

/** postgres://user:secret@host/db → postgres://user:***@host/db */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}
