import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  claimTotpStep,
  countAccounts,
  deleteAccount,
  deleteApiKey,
  deleteTokensOf,
  extendToken,
  findAccount,
  findApiKey,
  findToken,
  insertAccount,
  insertApiKey,
  insertToken,
  listApiKeys,
  purgeExpiredTokens,
  touchApiKey,
  updateAccount,
} from '../../src/store/admin-repo.js';
import { changesSince, recordChange } from '../../src/store/change-log.js';
import { openStore, type Store } from '../../src/store/open-store.js';
import { runCurl } from '../helpers/clients.js';
import { ENGINES, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startAdminServer } from './admin-helpers.js';

// The admin tables (migration 0003_admin) and their queries on both engines: embedded SQLite and PostgreSQL. On
// PostgreSQL a whole server runs too: an admin logs in over HTTPS and creates a partner who logs in with curl.

for (const engine of ENGINES) {
  describe(`admin store on ${engine}`, () => {
    let pg: TestPostgres | null = null;
    let dir: string;
    let store: Store;
    let url = '';

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ftpsd-admin-store-'));
      if (engine === 'postgres') {
        pg = await startPostgres();
        url = await pg.newDatabase();
      }
      store = await openStore({ path: join(dir, 'ftpsd.db'), url });
    });
    after(async () => {
      await store?.close();
      await pg?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('keeps accounts, one-use TOTP steps, login tokens and API keys', async () => {
      const db = store.db;
      const now = 1_800_000_000_000;
      assert.equal(await countAccounts(db), 0);
      await insertAccount(db, { name: 'ann', role: 'operator', passwordHash: '$argon2id$x', mustChangePassword: true }, now);
      const ann = await findAccount(db, 'ann');
      assert.deepEqual({ role: ann?.role, must: ann?.mustChangePassword, totp: ann?.totpSecret, disabled: ann?.disabled }, { role: 'operator', must: true, totp: null, disabled: false });
      await updateAccount(db, 'ann', { role: 'auditor', mustChangePassword: false, totpSecret: 'JBSWY3DPEHPK3PXP' }, now + 1);
      assert.equal((await findAccount(db, 'ann'))?.role, 'auditor');

      assert.equal(await claimTotpStep(db, 'ann', 100), true, 'first use of a step');
      assert.equal(await claimTotpStep(db, 'ann', 100), false, 'the same step again');
      assert.equal(await claimTotpStep(db, 'ann', 99), false, 'an older step');
      assert.equal(await claimTotpStep(db, 'ann', 101), true);

      await insertToken(db, { tokenHash: 'h1', account: 'ann', ip: '127.0.0.1', expiresAt: now + 1000 }, now);
      await insertToken(db, { tokenHash: 'h2', account: 'ann', ip: '127.0.0.1', expiresAt: now + 1000 }, now);
      assert.deepEqual(await findToken(db, 'h1', now), { account: 'ann', createdAt: now, expiresAt: now + 1000 });
      assert.equal(await findToken(db, 'h1', now + 1000), null, 'expired');
      await extendToken(db, 'h1', now + 5000);
      assert.equal((await findToken(db, 'h1', now + 1000))?.expiresAt, now + 5000);
      await deleteTokensOf(db, 'ann', 'h1');
      assert.equal(await findToken(db, 'h2', now), null, 'other logins ended');
      assert.ok(await findToken(db, 'h1', now), 'the kept one stays');
      await purgeExpiredTokens(db, now + 6000);
      assert.equal(await findToken(db, 'h1', now), null);

      await insertApiKey(db, { id: 'k1', keyHash: 'kh1', account: 'ann', label: 'ci', expiresAt: now + 10_000 }, now);
      assert.equal((await findApiKey(db, 'kh1', now))?.label, 'ci');
      assert.equal(await findApiKey(db, 'kh1', now + 10_000), null, 'expired key');
      await touchApiKey(db, 'k1', now + 5);
      assert.equal((await listApiKeys(db, 'ann'))[0]?.lastUsedAt, now + 5);
      assert.equal((await deleteApiKey(db, 'k1'))?.id, 'k1');
      await insertApiKey(db, { id: 'k2', keyHash: 'kh2', account: 'ann', label: 'ci', expiresAt: null }, now);
      assert.equal(await deleteAccount(db, 'ann'), true);
      assert.deepEqual(await listApiKeys(db), [], 'keys go with their account');
    });

    it('takes 0003_admin into a store that already ran the later migrations', async () => {
      // A store made by a build without the admin tables (0001, 0002, 0004 run), opened by this one.
      const location = engine === 'sqlite' ? { path: join(dir, 'older.db'), url: '' } : { path: '', url: await pg!.newDatabase() };
      const older = await openStore(location);
      await older.db.schema.dropTable('admin_api_keys').execute();
      await older.db.schema.dropTable('admin_tokens').execute();
      await older.db.schema.dropTable('admin_accounts').execute();
      await older.db.schema.alterTable('change_log').dropColumn('ip').execute();
      await older.db.deleteFrom('store_migrations' as never).where('name' as never, '=', '0003_admin' as never).execute();
      await older.close();
      const reopened = await openStore(location);
      try {
        assert.equal(await countAccounts(reopened.db), 0, 'the admin tables exist again');
        await recordChange(reopened.db, { actor: 'admin:x', ip: '192.0.2.1', action: 'a', entityKind: 'k', entityName: 'n' });
      } finally {
        await reopened.close();
      }
    });

    it('records the address of a change in the change log', async () => {
      await recordChange(store.db, { actor: 'admin:ann', ip: '192.0.2.4', action: 'kick', entityKind: 'session', entityName: 'abc' });
      await recordChange(store.db, { actor: 'cli:root', action: 'create', entityKind: 'user', entityName: 'x' });
      const [a, b] = (await changesSince(store.db, 0)).slice(-2);
      assert.equal(a?.ip, '192.0.2.4');
      assert.equal(b?.ip, undefined);
    });

    if (engine === 'postgres') {
      it('serves the admin API on a PostgreSQL store: a partner created there logs in at once', async () => {
        const s = await startAdminServer({ config: { store: { url: await pg!.newDatabase() } } });
        try {
          const root = await s.account('root', 'admin');
          const created = await s.request('POST', '/api/v1/partners', { token: root.token, body: { name: 'pgpartner', basePath: join(s.dir, 'pg') } });
          assert.equal(created.status, 201, created.text);
          const curl = await runCurl(['--ssl-reqd', '-k', '-u', `pgpartner:${created.json.password}`, '--list-only', `ftp://127.0.0.1:${s.port}/`]);
          assert.equal(curl.code, 0, curl.stderr);
          const audit = await s.request('GET', '/api/v1/audit/records?user=root&event=store_change', { token: root.token });
          assert.equal(audit.json.records.length, 3);
          assert.ok(audit.json.records.every((r: any) => r.ip === '127.0.0.1'));
        } finally {
          await s.close();
        }
      });
    }
  });
}
