import type { Kysely } from 'kysely';
import type { BanChanges, BanFileState, BanPersistence } from '../defender/ban-file.js';
import { notifyCluster } from './cluster-repo.js';
import type { Database, Engine } from './schema.js';

// The defender's bans and offence history in the store, so a restarted server, `ftpsd ban` and other nodes share
// them. Writes touch only the addresses that changed, so two writers lose nothing of each other's.

type Db = Kysely<Database>;

/** The defender's persistence in the store; on PostgreSQL every write wakes the other nodes to re-read the bans. */
export function storeBanPersistence(db: Db, location: string, engine: Engine = 'sqlite'): BanPersistence {
  return { describe: location, load: (now) => loadBans(db, now), save: (changes, now) => saveBanChanges(db, changes, now, engine) };
}

export async function loadBans(db: Db, now: number): Promise<BanFileState> {
  const [bans, offences] = await Promise.all([
    db.selectFrom('bans').selectAll().where('until_at', '>', now).orderBy('ip').execute(),
    db.selectFrom('ban_offences').selectAll().orderBy('ip').execute(),
  ]);
  return {
    bans: bans.map((b) => ({ ip: b.ip, until: b.until_at, reason: b.reason, offences: b.offences })),
    offences: offences.map((o) => ({ ip: o.ip, count: o.count, lastBanAt: o.last_ban_at })),
  };
}

export async function saveBanChanges(db: Db, changes: BanChanges, now: number, engine: Engine = 'sqlite'): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const b of changes.bans) {
      const row = { until_at: b.until, reason: b.reason, offences: b.offences };
      await trx.insertInto('bans').values({ ip: b.ip, ...row }).onConflict((oc) => oc.column('ip').doUpdateSet(row)).execute();
    }
    if (changes.removedBans.length > 0) await trx.deleteFrom('bans').where('ip', 'in', changes.removedBans).execute();
    for (const o of changes.offences) {
      const row = { count: o.count, last_ban_at: o.lastBanAt };
      await trx.insertInto('ban_offences').values({ ip: o.ip, ...row }).onConflict((oc) => oc.column('ip').doUpdateSet(row)).execute();
    }
    if (changes.removedOffences.length > 0) await trx.deleteFrom('ban_offences').where('ip', 'in', changes.removedOffences).execute();
    // Expired bans are of no use to anyone; dropping them here keeps the table the size of the active list.
    await trx.deleteFrom('bans').where('until_at', '<=', now).execute();
    await notifyCluster(trx, engine, 'bans');
  });
}
