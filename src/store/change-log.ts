import { userInfo } from 'node:os';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

// Every change to the store's partner model (CLI, partners file, lifecycle jobs, later the admin API) is recorded
// here, in the same transaction as the change: who, what, before and after (never secrets). A running server reads
// new records and writes each to its audit trail, so the hash-chained audit file keeps a single writer.

type Db = Kysely<Database>;

export interface ChangeRecord {
  actor: string;
  action: string;
  entityKind: string;
  entityName: string;
  before?: unknown;
  after?: unknown;
  /** Address the change came from (admin API); absent for the CLI and jobs. */
  ip?: string;
}

export interface LoggedChange extends ChangeRecord {
  id: number;
  at: number;
}

export async function recordChange(db: Db, change: ChangeRecord, at = Date.now()): Promise<void> {
  await db
    .insertInto('change_log')
    .values({
      at,
      actor: change.actor,
      action: change.action,
      entity_kind: change.entityKind,
      entity_name: change.entityName,
      before: change.before === undefined ? null : JSON.stringify(change.before),
      after: change.after === undefined ? null : JSON.stringify(change.after),
      ip: change.ip ?? null,
    })
    .execute();
}

export async function changesSince(db: Db, afterId: number, limit = 500): Promise<LoggedChange[]> {
  const rows = await db.selectFrom('change_log').selectAll().where('id', '>', afterId).orderBy('id').limit(limit).execute();
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    entityKind: r.entity_kind,
    entityName: r.entity_name,
    ...(r.before === null ? {} : { before: JSON.parse(r.before) as unknown }),
    ...(r.after === null ? {} : { after: JSON.parse(r.after) as unknown }),
    ...(r.ip === null ? {} : { ip: r.ip }),
  }));
}

export async function latestChangeId(db: Db): Promise<number> {
  const row = await db.selectFrom('change_log').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
  return row?.id === null || row?.id === undefined ? 0 : Number(row.id);
}

export async function getMeta(db: Db, key: string): Promise<string | null> {
  return (await db.selectFrom('store_meta').select('value').where('key', '=', key).executeTakeFirst())?.value ?? null;
}

export async function setMeta(db: Db, key: string, value: string): Promise<void> {
  await db.insertInto('store_meta').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
}

/** "cli:alice" for the operating-system user running a command. */
export function cliActor(prefix = 'cli'): string {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `${prefix}:${name}`;
}
