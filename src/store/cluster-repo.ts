import { sql, type Kysely } from 'kysely';
import type { ClusterCertificatesTable, Database, Engine } from './schema.js';

// What nodes sharing one store tell each other: the logged-in sessions of every node (for per-user caps across
// nodes), the certificate one node ordered for all, and a wake-up signal (PostgreSQL NOTIFY) after a write others
// should see at once.

type Db = Kysely<Database>;

/** The PostgreSQL channel of the wake-up signals; the payload says what changed. */
export const CLUSTER_CHANNEL = 'ftpsd_cluster';
export type ClusterSignal = 'bans' | 'certificate' | 'changes';

/** Wakes the other nodes (PostgreSQL NOTIFY, delivered at commit when called in a transaction); nothing on SQLite. */
export async function notifyCluster(db: Db, engine: Engine, signal: ClusterSignal): Promise<void> {
  if (engine !== 'postgres') return;
  await sql`select pg_notify(${CLUSTER_CHANNEL}, ${signal})`.execute(db);
}

export interface ClusterSessionClaim {
  nodeId: string;
  sid: string;
  user: string;
  ip: string;
  /** The user's cap over every node. */
  max: number;
  /** Sessions whose heartbeat is older than this (epoch ms) no longer count: their node died. */
  aliveAfter: number;
  now: number;
}

/**
 * Records a logged-in session if the user holds fewer than `max` live sessions over all nodes; false otherwise.
 * The count and the insert run under a lock on the user's name (a PostgreSQL transaction advisory lock; SQLite
 * serialises writers anyway), so two nodes logging the same user in at once cannot both take the last place.
 */
export async function claimClusterSession(db: Db, engine: Engine, c: ClusterSessionClaim): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    if (engine === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`ftpsd_sessions:${c.user}`}))`.execute(trx);
    const row = await trx
      .selectFrom('cluster_sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_name', '=', c.user)
      .where('heartbeat_at', '>', c.aliveAfter)
      .executeTakeFirstOrThrow();
    if (Number(row.n) >= c.max) return false;
    await trx
      .insertInto('cluster_sessions')
      .values({ id: `${c.nodeId}/${c.sid}`, node_id: c.nodeId, user_name: c.user, ip: c.ip, started_at: c.now, heartbeat_at: c.now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ user_name: c.user, heartbeat_at: c.now }))
      .execute();
    return true;
  });
}

export async function releaseClusterSession(db: Db, nodeId: string, sid: string): Promise<void> {
  await db.deleteFrom('cluster_sessions').where('id', '=', `${nodeId}/${sid}`).execute();
}

/** Refreshes every session of a node; returns how many it holds in the store. */
export async function heartbeatClusterSessions(db: Db, nodeId: string, now: number): Promise<number> {
  const r = await db.updateTable('cluster_sessions').set({ heartbeat_at: now }).where('node_id', '=', nodeId).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Forgets a node's sessions (it starts afresh: whatever it held before a crash is gone) and every expired one. */
export async function resetClusterSessions(db: Db, nodeId: string, aliveAfter: number): Promise<void> {
  await db.deleteFrom('cluster_sessions').where((eb) => eb.or([eb('node_id', '=', nodeId), eb('heartbeat_at', '<=', aliveAfter)])).execute();
}

/** Live sessions per node, for `ftpsd` status and the tests. */
export async function liveClusterSessions(db: Db, aliveAfter: number): Promise<Array<{ nodeId: string; user: string; ip: string }>> {
  const rows = await db.selectFrom('cluster_sessions').select(['node_id', 'user_name', 'ip']).where('heartbeat_at', '>', aliveAfter).orderBy('node_id').execute();
  return rows.map((r) => ({ nodeId: r.node_id, user: r.user_name, ip: r.ip }));
}

export type SharedCertificate = Omit<ClusterCertificatesTable, 'name'>;

export async function loadSharedCertificate(db: Db, name: string): Promise<SharedCertificate | null> {
  return (await db.selectFrom('cluster_certificates').select(['key_pem', 'cert_pem', 'meta', 'updated_at', 'updated_by']).where('name', '=', name).executeTakeFirst()) ?? null;
}

/** Stores the certificate for every node and wakes them. */
export async function saveSharedCertificate(db: Db, engine: Engine, name: string, cert: SharedCertificate): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('cluster_certificates').values({ name, ...cert }).onConflict((oc) => oc.column('name').doUpdateSet(cert)).execute();
    await notifyCluster(trx, engine, 'certificate');
  });
}

/**
 * Runs `fn` while holding a cluster-wide lock named `key` (a PostgreSQL session advisory lock on one pooled
 * connection). Returns null without running `fn` when another node holds it. On SQLite it just runs `fn`: one node.
 */
export async function withClusterLock<T>(db: Db, engine: Engine, key: string, fn: () => Promise<T>): Promise<{ value: T } | null> {
  if (engine !== 'postgres') return { value: await fn() };
  return db.connection().execute(async (conn) => {
    const got = await sql<{ ok: boolean }>`select pg_try_advisory_lock(hashtext(${key})) as ok`.execute(conn);
    if (got.rows[0]?.ok !== true) return null;
    try {
      return { value: await fn() };
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
    }
  });
}
