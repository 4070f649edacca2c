import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordChange } from '../../src/store/change-log.js';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.js';
import { EVENT_TYPES } from '../../src/store/event-model.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rule, setHooks, webhook } from './hooks.js';
import { startReceiver, type Receiver } from './receiver.js';

// Where the server publishes: a raw FTPS session walks through logins, file operations and transfers (one cut short,
// one over quota), the defender bans an address, and the store's change log says a user was disabled, another
// expired and a file was deleted by retention. One rule takes every event type to one receiver.

describe('published events', () => {
  let t: TestServer;
  let rx: Receiver;

  before(async () => {
    rx = await startReceiver({ secret: 'all' });
    t = await startTestServer({
      users: [
        { name: 'alice', password: 'alice-secret' },
        { name: 'bob', password: 'bob-secret' },
      ],
      config: { events: { pollIntervalMs: 200 }, store: { pollIntervalMs: 200 } },
    });
    await setHooks(t, [webhook('all', rx.url, 'all')], [rule('everything', [...EVENT_TYPES], ['all'])]);
  });
  after(async () => {
    await t?.close();
    await rx?.close();
  });

  const find = (event: string, match: (e: Record<string, unknown>) => boolean = () => true) => rx.waitFor(1, 15_000, (r) => r.event.event === event && match(r.event)).then((x) => x[0]!.event);

  it('sessions publish logins, file operations and transfers', async () => {
    const bad = await ControlClient.connect(t.port);
    await bad.read();
    assert.equal((await bad.login('alice', 'wrong')).code, 530);
    bad.close();
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    assert.equal((await c.send('MKD docs')).code, 257);
    let port = await c.epsv();
    assert.equal((await c.send('STOR docs/a.txt')).code, 150);
    await c.dataConnect(port).upload(Buffer.from('abc'));
    assert.equal((await c.read())?.code, 226);
    port = await c.epsv();
    assert.equal((await c.send('RETR docs/a.txt')).code, 150);
    const dl = c.dataConnect(port);
    assert.equal((await dl.received).toString(), 'abc');
    assert.equal((await c.read())?.code, 226);
    assert.equal((await c.send('RNFR docs/a.txt')).code, 350);
    assert.equal((await c.send('RNTO docs/b.txt')).code, 250);
    assert.equal((await c.send('DELE docs/b.txt')).code, 250);
    assert.equal((await c.send('RMD docs')).code, 250);
    // An upload cut without TLS close_notify is discarded (426).
    port = await c.epsv();
    assert.equal((await c.send('STOR cut.bin')).code, 150);
    const cut = c.dataConnect(port);
    await cut.secured;
    await new Promise<void>((resolve) => cut.socket.write(Buffer.alloc(10_000), () => resolve()));
    cut.socket.destroy();
    assert.equal((await c.read())?.code, 426);
    c.close();

    assert.equal((await find('login_failed')).reason, 'bad_password');
    const login = await find('login', (e) => e.user === 'alice');
    assert.match(String(login.tlsVersion), /^TLSv1\.[23]$/);
    assert.equal((await find('mkdir')).path, '/docs');
    assert.equal((await find('upload')).path, '/docs/a.txt');
    const download = await find('download');
    assert.equal(download.size, 3);
    assert.equal(download.resumed, true);
    const rename = await find('rename');
    assert.deepEqual([rename.path, rename.toPath], ['/docs/a.txt', '/docs/b.txt']);
    assert.equal((await find('delete')).path, '/docs/b.txt');
    assert.equal((await find('rmdir')).path, '/docs');
    const discarded = await find('upload_discarded');
    assert.equal(discarded.path, '/cut.bin');
    assert.equal(discarded.code, 426);
    assert.equal(discarded.result, 'aborted');
  });

  it('quota, the defender and the store publish theirs', async () => {
    // A quota on bob's home, as a partners file would set it.
    await t.server.store.db.insertInto('policies').values({ owner_kind: 'user', owner_name: 'bob', quota_bytes: 1_000 } as never).execute();
    const c = await ControlClient.loggedIn(t.port, 'bob', 'bob-secret');
    const port = await c.epsv();
    const reply = await c.send('STOR big.bin');
    if (reply.code === 150) {
      await c.dataConnect(port).upload(Buffer.alloc(5_000));
      assert.equal((await c.read())?.code, 552);
    } else assert.equal(reply.code, 552);
    c.close();
    const quota = await find('quota_exceeded');
    assert.equal(quota.user, 'bob');
    assert.equal(quota.path, '/big.bin');
    assert.equal(quota.code, 552);

    t.server.defender!.ban('192.0.2.7', 60_000, 'manual');
    const ban = await find('ban');
    assert.equal(ban.ip, '192.0.2.7');
    assert.match(String(ban.id), /^ban-192\.0\.2\.7-\d+$/);

    const db = t.server.store.db;
    await db.updateTable('users').set({ disabled: 1 }).where('name', '=', 'bob').execute();
    await recordChange(db, { actor: 'cli:test', action: 'disable', entityKind: 'user', entityName: 'bob', before: { disabled: false }, after: { disabled: true } });
    await recordChange(db, { actor: 'system:retention', action: 'retention_delete', entityKind: 'file', entityName: '/srv/outbox/old.csv', before: { folder: 'outbox', size: 42, ageDays: 9, since: 'modified' } });
    await db.updateTable('users').set({ expires_at: Date.now() - 60_000 }).where('name', '=', 'alice').execute();
    await t.server.runHousekeeping();
    await t.server.syncStore();
    assert.equal((await find('user_disabled')).user, 'bob');
    const retention = await find('retention_delete');
    assert.equal(retention.storagePath, '/srv/outbox/old.csv');
    assert.equal(retention.size, 42);
    assert.equal((await find('user_expired')).user, 'alice');
    assert.ok(rx.received.every((r) => r.signatureValid));
  });

  it('a replaced certificate file publishes certificate_renewed', async () => {
    const first = await createSelfSignedCertificate({ names: ['localhost'] });
    const second = await createSelfSignedCertificate({ names: ['localhost'] });
    const dir = await mkdtemp(join(tmpdir(), 'ftpsd-events-cert-'));
    await writeFile(join(dir, 'cert.pem'), first.certPem);
    await writeFile(join(dir, 'key.pem'), first.keyPem);
    const c = await startTestServer({ config: { tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), watchIntervalMs: 0 } } });
    try {
      await setHooks(c, [webhook('all', rx.url, 'all')], [rule('certs', ['certificate_renewed'], ['all'])]);
      await writeFile(join(dir, 'cert.pem'), second.certPem);
      await writeFile(join(dir, 'key.pem'), second.keyPem);
      assert.equal(await c.server.reloadCertificate(), true);
      const renewed = await find('certificate_renewed');
      assert.equal((renewed.details as Record<string, unknown>).source, 'file');
      assert.equal((renewed.details as Record<string, unknown>).serial, c.server.certStore.current().leaf.serialNumber);
    } finally {
      await c.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
