import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * The SQLite connection as kysely's driver sees it, with its statements prepared once per SQL text. The driver
 * prepares every query anew, and SQLite's compile of a statement costs more than running it: the delivery queue's
 * claim, polled every second, spent more time in `prepare` than in the query. kysely renders a given query to the
 * same text each time (values are bound, not inlined), so a few dozen texts cover the server's queries.
 */
export function withStatementCache(database: BetterSqlite3.Database, maxStatements = MAX_CACHED_STATEMENTS): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => {
      cache.clear();
      database.close();
    },
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      // A statement still iterating a streamed result cannot run again: that caller gets one of its own.
      if (cached !== undefined && !cached.busy) {
        // Most recently used last, so the oldest is the first key.
        cache.delete(sql);
        cache.set(sql, cached);
        return cached;
      }
      const statement = database.prepare(sql);
      if (cached === undefined) {
        cache.set(sql, statement);
        if (cache.size > maxStatements) cache.delete(cache.keys().next().value as string);
      }
      return statement;
    },
  };
}

/** Queries whose text varies (IN lists of different lengths) make new entries; the least recently used go first. */
const MAX_CACHED_STATEMENTS = 256;
