import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBans, saveBanChanges } from '../../src/store/ban-repo.js';
import { changesSince, latestChangeId, recordChange } from '../../src/store/change-log.js';
import { openStore, type Store } from '../../src/store/open-store.js';
import type { FolderSpec, GroupSpec, UserSpec } from '../../src/store/partner-model.js';
import { deleteUser, loadPartners, loadUserRuntime, putFolder, putGroup, putUser, recordLogin } from '../../src/store/partner-repo.js';
import { addUsage, getUsage, setUsage, usageAdder } from '../../src/store/quota-repo.js';
import { ENGINES, startPostgres, type TestPostgres } from '../helpers/postgres.js';

// The same store checks on both engines: SQLite (a file in a temp folder) and a throwaway PostgreSQL.

const folder: FolderSpec = { name: 'acme-inbox', path: '/srv/exchange/acme/inbox', description: 'drop box', quotaBytes: 1000, quotaFiles: null, retentionMaxAgeDays: 1.5, retentionAfterDownload: true };
const group: GroupSpec = {
  name: 'partners',
  description: '',
  home: null,
  mounts: { '/inbox': 'acme-inbox' },
  permissions: { '/': ['list'], '/inbox': ['upload'] },
  policy: { minTlsVersion: 'TLSv1.3', maxSessions: 2, allowedNetworks: ['127.0.0.0/8'] },
};
const user: UserSpec = {
  name: 'acme',
  description: 'ACME Corp',
  home: null,
  passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo',
  groups: ['partners'],
  disabled: false,
  expiresAt: Date.UTC(2030, 0, 1),
  mounts: {},
  permissions: { '/inbox': ['list', 'upload'] },
  policy: { reuseException: { reason: 'legacy client', expiresAt: Date.UTC(2029, 5, 1) }, uploadBytesPerSecond: 5_000_000_000 },
};

for (const engine of ENGINES) {
  describe(`store on ${engine}`, () => {
    let pg: TestPostgres | null = null;
    let dir: string;
    let store: Store;
    const open = async () => (engine === 'sqlite' ? openStore({ path: join(dir, 'ftpsd.db'), url: '' }) : openStore({ path: '', url: await pg!.newDatabase() }));

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ftpsd-store-'));
      if (engine === 'postgres') pg = await startPostgres();
      store = await open();
    });
    after(async () => {
      await store?.close();
      await pg?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('migrates an empty database and reopens it without migrating again', async () => {
      assert.equal(store.engine, engine);
      const tables = await store.db.introspection.getTables();
      for (const t of ['users', 'groups', 'user_groups', 'folders', 'mounts', 'permissions', 'policies', 'quota_usage', 'bans', 'ban_offences', 'change_log']) {
        assert.ok(tables.some((x) => x.name === t), `table ${t} exists`);
      }
      if (engine === 'sqlite') {
        await store.close();
        store = await open();
        assert.deepEqual(await loadPartners(store.db), { users: {}, groups: {}, folders: {} });
      }
    });

    it('stores users, groups, folders, mounts, permissions and policies and reads them back unchanged', async () => {
      await store.db.transaction().execute(async (trx) => {
        await putFolder(trx, folder, 1);
        await putGroup(trx, group, 1);
        await putUser(trx, user, 1);
      });
      const set = await loadPartners(store.db);
      assert.deepEqual(set.folders['acme-inbox'], folder);
      assert.deepEqual(set.groups.partners, group);
      assert.deepEqual(set.users.acme, user);
      assert.equal(typeof set.users.acme!.expiresAt, 'number', 'int8 comes back as a number');

      const only = await loadPartners(store.db, { user: 'acme' });
      assert.deepEqual(Object.keys(only.groups), ['partners']);
      assert.deepEqual(Object.keys(only.folders), ['acme-inbox']);
      assert.deepEqual(await loadPartners(store.db, { user: 'nobody' }), { users: {}, groups: {}, folders: {} });
    });

    it('a transaction that fails leaves nothing behind', async () => {
      await assert.rejects(
        store.db.transaction().execute(async (trx) => {
          await putUser(trx, { ...user, name: 'half', groups: [] }, 2);
          await putUser(trx, { ...user, name: 'broken', groups: ['no-such-group'] }, 2);
        }),
      );
      assert.equal((await loadPartners(store.db)).users.half, undefined);
    });

    it('keeps login history when a user is replaced, and deletes a user with all its parts', async () => {
      await recordLogin(store.db, 'acme', 12345);
      await putUser(store.db, { ...user, description: 'changed' }, 3);
      assert.equal((await loadUserRuntime(store.db, 'acme'))?.lastLoginAt, 12345);
      await deleteUser(store.db, 'acme');
      const set = await loadPartners(store.db);
      assert.equal(set.users.acme, undefined);
      assert.ok(set.groups.partners, 'the group stays');
      const leftovers = await store.db.selectFrom('permissions').selectAll().where('owner_kind', '=', 'user').execute();
      assert.deepEqual(leftovers, []);
    });

    it('bans: changed addresses are written, expired ones dropped', async () => {
      const now = Date.now();
      await saveBanChanges(store.db, { bans: [{ ip: '192.0.2.1', until: now + 60_000, reason: 'manual', offences: 1 }, { ip: '192.0.2.2', until: now + 1, reason: 'x', offences: 2 }], removedBans: [], offences: [{ ip: '192.0.2.1', count: 1, lastBanAt: now }], removedOffences: [] }, now);
      let state = await loadBans(store.db, now + 10);
      assert.deepEqual(state.bans.map((b) => b.ip), ['192.0.2.1']);
      await saveBanChanges(store.db, { bans: [], removedBans: ['192.0.2.1'], offences: [], removedOffences: ['192.0.2.1'] }, now);
      state = await loadBans(store.db, now);
      assert.deepEqual(state, { bans: [{ ip: '192.0.2.2', until: now + 1, reason: 'x', offences: 2 }], offences: [] });
    });

    it('quota usage adds up concurrent changes and never goes below what was set', async () => {
      await Promise.all(Array.from({ length: 10 }, () => addUsage(store.db, 'folder:acme-inbox', { bytes: 100, files: 1 })));
      assert.deepEqual(await getUsage(store.db, 'folder:acme-inbox'), { bytes: 1000, files: 10 });
      await addUsage(store.db, 'folder:acme-inbox', { bytes: -300, files: -3 });
      assert.deepEqual(await getUsage(store.db, 'folder:acme-inbox'), { bytes: 700, files: 7 });
      await setUsage(store.db, 'folder:acme-inbox', { bytes: 5, files: 1 });
      assert.deepEqual(await getUsage(store.db, 'folder:acme-inbox'), { bytes: 5, files: 1 });
      assert.deepEqual(await getUsage(store.db, 'user:nobody'), { bytes: 0, files: 0 });
    });

    it("an upload's usage adder (a prepared statement on SQLite) counts like addUsage", async () => {
      const add = usageAdder(store);
      await add('folder:adder', { bytes: 4096, files: 1 });
      assert.deepEqual(await getUsage(store.db, 'folder:adder'), { bytes: 4096, files: 1 });
      await Promise.all(Array.from({ length: 5 }, () => add('folder:adder', { bytes: 100, files: 1 })));
      await add('folder:adder', { bytes: -96, files: 0 });
      assert.deepEqual(await getUsage(store.db, 'folder:adder'), { bytes: 4500, files: 6 });
      // A first change that removes counts from a scope never counted starts it at zero, as addUsage does.
      await add('folder:adder-new', { bytes: -10, files: -1 });
      assert.deepEqual(await getUsage(store.db, 'folder:adder-new'), { bytes: 0, files: 0 });
    });

    it('the change log keeps records in order with their before and after', async () => {
      const start = await latestChangeId(store.db);
      await recordChange(store.db, { actor: 'cli:root', action: 'update', entityKind: 'user', entityName: 'acme', before: { disabled: false }, after: { disabled: true } });
      await recordChange(store.db, { actor: 'cli:root', action: 'delete', entityKind: 'user', entityName: 'acme', before: { disabled: true } });
      const changes = await changesSince(store.db, start);
      assert.deepEqual(changes.map((c) => [c.action, c.before, c.after]), [['update', { disabled: false }, { disabled: true }], ['delete', { disabled: true }, undefined]]);
      assert.ok(changes[1]!.id > changes[0]!.id);
      assert.equal(await latestChangeId(store.db), changes[1]!.id);
    });
  });
}
