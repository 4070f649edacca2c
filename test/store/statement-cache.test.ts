import assert from 'node:assert/strict';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { withStatementCache } from '../../src/store/statement-cache.js';

interface Db {
  t: { id: number; name: string };
}

function open(max?: number) {
  const raw = new Sqlite(':memory:');
  raw.exec('create table t (id integer primary key, name text)');
  for (let i = 1; i <= 50; i++) raw.prepare('insert into t (id, name) values (?, ?)').run(i, `n${i}`);
  let prepared = 0;
  const prepare = raw.prepare.bind(raw);
  raw.prepare = ((sql: string) => {
    prepared++;
    return prepare(sql);
  }) as typeof raw.prepare;
  const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: withStatementCache(raw, max) }) });
  return { db, prepared: () => prepared };
}

test('a query run again with other values is prepared once and answers for its own values', async () => {
  const { db, prepared } = open();
  for (let i = 1; i <= 20; i++) assert.equal((await db.selectFrom('t').select('name').where('id', '=', i).executeTakeFirstOrThrow()).name, `n${i}`);
  assert.equal(prepared(), 1);
  await db.destroy();
});

test('a statement still iterating a streamed result is not handed out again: the caller gets its own', () => {
  const raw = new Sqlite(':memory:');
  raw.exec('create table t (id integer primary key)');
  for (let i = 1; i <= 5; i++) raw.prepare('insert into t (id) values (?)').run(i);
  const cache = withStatementCache(raw);
  const sql = 'select id from t where id > ?';
  const first = cache.prepare(sql);
  const rows = first.iterate([0]);
  rows.next();
  const second = cache.prepare(sql);
  assert.notEqual(second, first);
  assert.equal(second.all([3]).length, 2);
  assert.equal([...rows].length, 4, 'the stream goes on where it was');
  assert.equal(cache.prepare(sql), first, 'once the stream is done, the cached statement is used again');
  cache.close();
});

test('at most the given number of statements is kept: the least recently used is prepared again', async () => {
  const { db, prepared } = open(2);
  const byId = () => db.selectFrom('t').select('name').where('id', '=', 1).execute();
  const byName = () => db.selectFrom('t').select('id').where('name', '=', 'n1').execute();
  const count = () => db.selectFrom('t').select((eb) => eb.fn.countAll().as('n')).execute();
  await byId();
  await byName();
  await byId(); // cached; byName is now the least recently used
  await count(); // evicts byName
  assert.equal(prepared(), 3);
  await byId();
  assert.equal(prepared(), 3);
  await byName();
  assert.equal(prepared(), 4);
  await db.destroy();
});
