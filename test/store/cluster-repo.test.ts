import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { claimClusterSession, heartbeatClusterSessions, liveClusterSessions, releaseClusterSession, resetClusterSessions } from '../../src/store/cluster-repo.js';
import { openStore, type Store } from '../../src/store/open-store.js';
import { getUsage, reserveUsage } from '../../src/store/quota-repo.js';
import { ENGINES, startPostgres, type TestPostgres } from '../helpers/postgres.js';

// What nodes share through the store, on both engines: session rows counted per user across nodes (and a dead
// node's rows expiring), and quota reservations that never let concurrent uploads overshoot.

for (const engine of ENGINES) {
  describe(`cluster state in the store (${engine})`, () => {
    let dir: string;
    let pg: TestPostgres | null = null;
    let store: Store;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ftpsd-cluster-repo-'));
      if (engine === 'postgres') pg = await startPostgres();
      store = engine === 'sqlite' ? await openStore({ path: join(dir, 'ftpsd.db'), url: '' }) : await openStore({ path: '', url: await pg!.newDatabase() });
    });
    after(async () => {
      await store?.close();
      await pg?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test('a user cap counts the sessions of every node; a dead node\'s sessions stop counting once expired', async () => {
      const now = 1_000_000;
      const claim = (nodeId: string, sid: string, at = now) => claimClusterSession(store.db, store.engine, { nodeId, sid, user: 'acme', ip: '192.0.2.1', max: 3, aliveAfter: at - 30_000, now: at });
      // Twelve logins at once from three nodes against a cap of three: exactly three get in.
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => claim(`node${(i % 3) + 1}`, `s${i}`)));
      assert.equal(results.filter(Boolean).length, 3);
      assert.equal((await liveClusterSessions(store.db, now - 30_000)).length, 3);
      // One ends: a place is free.
      const holder = (await store.db.selectFrom('cluster_sessions').select(['node_id', 'id']).execute())[0]!;
      await releaseClusterSession(store.db, holder.node_id, holder.id.split('/')[1]!);
      assert.equal(await claim('node3', 'late'), true);
      assert.equal(await claim('node3', 'later'), false);
      // node1 and node2 stop heartbeating (they died); node3 keeps beating. After the expiry only node3's count.
      const later = now + 31_000;
      await heartbeatClusterSessions(store.db, 'node3', later);
      const alive = await liveClusterSessions(store.db, later - 30_000);
      assert.ok(alive.every((s) => s.nodeId === 'node3'));
      assert.equal(await claim('node2', 'after-expiry', later), alive.length < 3);
      // A restarted node forgets its own rows.
      await resetClusterSessions(store.db, 'node3', 0);
      assert.equal((await liveClusterSessions(store.db, 0)).some((s) => s.nodeId === 'node3'), false);
    });

    test('quota reservations made at once never pass the limit together', async () => {
      const limits = { bytes: 1_000, files: 5 };
      const results = await Promise.all(Array.from({ length: 10 }, () => reserveUsage(store.db, 'folder:shared', { bytes: 300, files: 1 }, limits)));
      assert.equal(results.filter(Boolean).length, 3, 'three of 300 bytes fit in 1000');
      assert.deepEqual(await getUsage(store.db, 'folder:shared'), { bytes: 900, files: 3 });
      // Shrinking always passes, even with the count at the limit; the file count holds too.
      assert.equal(await reserveUsage(store.db, 'folder:shared', { bytes: -200, files: 0 }, limits), true);
      assert.equal(await reserveUsage(store.db, 'folder:shared', { bytes: 1, files: 3 }, limits), false);
      assert.equal(await reserveUsage(store.db, 'folder:shared', { bytes: 1, files: 2 }, limits), true);
    });
  });
}
