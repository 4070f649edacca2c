import assert from 'node:assert/strict';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { totpCode } from '../../src/admin/auth/totp.js';
import { CURL_UPLOAD_TLS_ARGS, runCurl, runLftp } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { errorOf, ok, startAdminServer, type AdminServer } from './admin-helpers.js';

// The admin API with real HTTPS requests: every route's happy path, what each role may do, and bad input refused with
// a clear 4xx that changes nothing. FTPS clients (curl, lftp) check that what the API changes is what partners see.

const ALICE = { name: 'alice', password: 'alice-secret-1' };

describe('admin API', () => {
  let s: AdminServer;
  let root: { token: string };
  let op: { token: string };
  let aud: { token: string };
  const as = (who: { token: string }) => ({
    get: (path: string) => s.request('GET', path, { token: who.token }),
    post: (path: string, body?: unknown) => s.request('POST', path, { token: who.token, ...(body === undefined ? {} : { body }) }),
    put: (path: string, body: unknown) => s.request('PUT', path, { token: who.token, body }),
    del: (path: string, body?: unknown) => s.request('DELETE', path, { token: who.token, ...(body === undefined ? {} : { body }) }),
  });
  const changeCount = async () => Number((await s.server.store.db.selectFrom('change_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  before(async () => {
    // The tests' own address never gets banned here; the defender gets its own server below.
    s = await startAdminServer({ users: [ALICE], config: { defender: { allowList: ['127.0.0.1'] }, limits: { maxSessionsPerIp: 50, transferChunkBytes: 16_384 }, acme: { eab: { keyId: 'kid', hmacKey: 'eab-secret-value' } }, storage: { s3: { locations: [{ name: 'rgw', endpoint: 'http://127.0.0.1:9', accessKeyId: 'AKID', secretAccessKey: 's3-secret-value' }] } } } });
    root = await s.account('root', 'admin');
    op = await s.account('op', 'operator');
    aud = await s.account('aud', 'auditor');
  });
  after(() => s?.close());

  it('answers 401 in the one error shape without a login, and logs in with a token', async () => {
    const msg = errorOf(await s.request('GET', '/api/v1/users'), 401, 'unauthorized');
    assert.match(msg, /log in/);
    errorOf(await s.request('GET', '/api/v1/users', { token: 'fat_not-a-token' }), 401, 'unauthorized');
    errorOf(await s.login('root', 'wrong password'), 401, 'invalid_credentials');
    const me = ok(await as(root).get('/api/v1/auth/me'));
    assert.deepEqual({ name: me.name, role: me.role, via: me.via }, { name: 'root', role: 'admin', via: 'token' });
    const r = await s.request('GET', '/api/v1/users', { token: root.token });
    assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  it('creates, reads, replaces and deletes folders, groups and users, with their permissions and policies', async () => {
    const api = as(root);
    ok(await api.post('/api/v1/folders', { name: 'shared', path: 'data/shared', quota: { bytes: 1_000_000 }, retention: { maxAgeDays: 30 } }), 201);
    assert.equal(ok(await api.get('/api/v1/folders/shared')).quota.bytes, 1_000_000);
    ok(await api.put('/api/v1/folders/shared', { path: 'data/shared2', description: 'moved' }));
    assert.equal(ok(await api.get('/api/v1/folders/shared')).path, 'data/shared2');
    assert.ok(ok(await api.get('/api/v1/folders')).some((f: any) => f.name === 'shared'));

    ok(await api.post('/api/v1/groups', { name: 'team', permissions: { '/': ['list'] }, policy: { maxSessions: 3 } }), 201);
    assert.deepEqual(ok(await api.get('/api/v1/groups/team')).policy, { maxSessions: 3 });
    ok(await api.put('/api/v1/groups/team', { mounts: { '/shared': 'shared' }, permissions: { '/': ['list'], '/shared': ['list', 'download'] } }));
    assert.deepEqual(ok(await api.get('/api/v1/groups/team/permissions')), { '/': ['list'], '/shared': ['list', 'download'] });
    ok(await api.put('/api/v1/groups/team/permissions', { '/': ['list'], '/shared': ['list', 'download', 'upload'] }));
    assert.deepEqual(ok(await api.get('/api/v1/groups/team')).permissions, { '/': ['list'], '/shared': ['list', 'download', 'upload'] });
    ok(await api.put('/api/v1/groups/team/policy', { minTlsVersion: 'TLSv1.2' }));
    assert.deepEqual(ok(await api.get('/api/v1/groups/team/policy')), { minTlsVersion: 'TLSv1.2' });
    assert.ok(ok(await api.get('/api/v1/groups')).some((g: any) => g.name === 'team'));

    const bob = ok(await api.post('/api/v1/users', { name: 'bob', password: 'bob-secret-1', groups: ['team'], home: join(s.dir, 'homes', 'bob'), permissions: { '/': ['list', 'upload'] } }), 201);
    assert.equal(bob.passwordSet, true);
    assert.equal(bob.password, undefined, 'no hash in the answer');
    ok(await api.put('/api/v1/users/bob/permissions', { '/': ['list', 'download', 'upload', 'mkdir'] }));
    assert.deepEqual(ok(await api.get('/api/v1/users/bob/permissions')), { '/': ['list', 'download', 'upload', 'mkdir'] });
    ok(await api.put('/api/v1/users/bob/policy', { uploadBytesPerSecond: 1_000_000, allowedNetworks: ['127.0.0.0/8'] }));
    assert.deepEqual(ok(await api.get('/api/v1/users/bob/policy')), { allowedNetworks: ['127.0.0.0/8'], uploadBytesPerSecond: 1_000_000 });
    const got = ok(await api.get('/api/v1/users/bob'));
    assert.deepEqual(got.groups, ['team']);
    assert.equal(got.lastLoginAt, null);
    ok(await api.put('/api/v1/users/bob/password', { password: 'bob-secret-2' }));
    await mkdir(join(s.dir, 'homes', 'bob'), { recursive: true });
    const login = await runCurl(['--ssl-reqd', '-k', '-u', 'bob:bob-secret-2', `ftp://127.0.0.1:${s.port}/`]);
    assert.equal(login.code, 0, `bob logs in with the password set through the API: ${login.stderr}`);
    // Replacing without a password keeps it.
    const { name: _n, passwordSet: _p, lastLoginAt: last, ...entry } = ok(await api.get('/api/v1/users/bob'));
    assert.ok(last !== null, 'the login is shown');
    ok(await api.put('/api/v1/users/bob', { ...entry, description: 'renamed' }));
    assert.equal((await runCurl(['--ssl-reqd', '-k', '-u', 'bob:bob-secret-2', `ftp://127.0.0.1:${s.port}/`])).code, 0);

    errorOf(await api.del('/api/v1/groups/team'), 409, 'conflict');
    ok(await api.del('/api/v1/users/bob'));
    errorOf(await api.get('/api/v1/users/bob'), 404, 'not_found');
    ok(await api.del('/api/v1/groups/team'));
    ok(await api.del('/api/v1/folders/shared'));
    assert.ok(ok(await api.get('/api/v1/users')).some((u: any) => u.name === 'alice'));
  });

  it('creates a partner with an upload-only inbox and a download-only outbox that logs in with curl at once', async () => {
    const created = ok(await as(root).post('/api/v1/partners', { name: 'acme', basePath: join(s.dir, 'exchange', '{user}'), outboxRetentionDays: 7 }), 201);
    const password = created.password as string;
    assert.match(password, /^[A-Za-z0-9_-]{16}$/);
    assert.deepEqual(created.user.permissions, { '/': ['list'], '/inbox': ['upload'], '/outbox': ['list', 'download'] });
    assert.deepEqual(created.folders.map((f: any) => f.name), ['acme-inbox', 'acme-outbox']);

    const url = `ftp://127.0.0.1:${s.port}`;
    const up = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', `acme:${password}`, '-T', '-', `${url}/inbox/order.csv`], { input: 'id,qty\n1,5\n' });
    assert.equal(up.code, 0, `upload to the inbox: ${up.stderr}`);
    assert.equal(await readFile(join(s.dir, 'exchange', 'acme', 'inbox', 'order.csv'), 'utf8'), 'id,qty\n1,5\n');
    const list = await runCurl(['--ssl-reqd', '-k', '-u', `acme:${password}`, '--list-only', `${url}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split(/\r?\n/).sort(), ['inbox', 'outbox'], 'only its two folders');
    const readBack = await runCurl(['--ssl-reqd', '-k', '-u', `acme:${password}`, `${url}/inbox/order.csv`]);
    assert.notEqual(readBack.code, 0, 'the inbox cannot be read back');
    await writeFile(join(s.dir, 'exchange', 'acme', 'outbox', 'invoice.pdf'), 'PDF');
    const down = await runCurl(['--ssl-reqd', '-k', '-u', `acme:${password}`, `${url}/outbox/invoice.pdf`]);
    assert.equal(down.stdout, 'PDF', down.stderr);
    errorOf(await as(root).post('/api/v1/partners', { name: 'acme' }), 409, 'conflict');
  });

  it('shows live sessions with client name, TLS and transfer progress, and kicks one', async () => {
    const password = 'globex-secret-1';
    ok(await as(root).post('/api/v1/partners', { name: 'globex', password, basePath: join(s.dir, 'exchange', 'globex') }), 201);
    // Paced by the server (the partner's policy) and by lftp, so the transfer lasts whatever the socket buffers hold.
    ok(await as(root).put('/api/v1/users/globex/policy', { downloadBytesPerSecond: 40_000 }));
    await writeFile(join(s.dir, 'exchange', 'globex', 'outbox', 'big.bin'), Buffer.alloc(400_000, 7));
    const lftp = runLftp('get /outbox/big.bin -o /dev/null', { port: s.port, user: 'globex', password, settings: ['set net:limit-rate 40000'] });
    let session: any;
    for (let i = 0; i < 100 && session?.transfer?.bytes === undefined; i++) {
      session = (ok(await as(op).get('/api/v1/sessions')) as any[]).find((x) => x.user === 'globex' && x.transfer !== null);
      if (session?.transfer?.bytes === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(session, 'the session and its transfer appear');
    assert.match(session.client ?? '', /^lftp/, 'client name from CLNT');
    assert.match(session.tls.version, /^TLSv1\.[23]$/);
    assert.equal(session.transfer.direction, 'download');
    assert.equal(session.transfer.path, '/outbox/big.bin');
    assert.equal(session.transfer.size, 400_000);
    await new Promise((r) => setTimeout(r, 1_200));
    const later = ok(await as(aud).get(`/api/v1/sessions/${session.id}`));
    assert.ok(later.transfer.bytes > 0 && later.transfer.bytes < 400_000, `progress: ${later.transfer.bytes}`);
    assert.ok(later.transfer.bytesPerSecond <= 80_000, `rate-limited: ${later.transfer.bytesPerSecond}`);

    errorOf(await as(aud).del(`/api/v1/sessions/${session.id}`), 403, 'forbidden');
    const kicked = ok(await as(op).del(`/api/v1/sessions/${session.id}`));
    assert.equal(kicked.user, 'globex');
    const result = await lftp;
    assert.notEqual(result.code, 0, 'lftp saw its session closed');
    assert.equal(ok(await as(op).get('/api/v1/sessions')).some((x: any) => x.id === session.id), false);
    errorOf(await as(op).del(`/api/v1/sessions/${session.id}`), 404, 'not_found');
    // The cut transfer is recorded once its data connection has closed on the server, which may come after lftp exits.
    let recent: any[] = [];
    for (const until = Date.now() + 5_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      recent = ok(await as(aud).get('/api/v1/transfers/recent'));
      if (recent.some((t: any) => t.user === 'globex' && t.path === '/outbox/big.bin')) break;
    }
    assert.ok(recent.some((t: any) => t.user === 'globex' && t.path === '/outbox/big.bin' && t.result === 'aborted'), JSON.stringify(recent.slice(0, 3)));
  });

  it('lists, adds and removes bans', async () => {
    const ban = ok(await as(root).post('/api/v1/bans', { ip: '192.0.2.77', minutes: 5, reason: 'test' }), 201);
    assert.equal(ban.ip, '192.0.2.77');
    assert.ok(ok(await as(aud).get('/api/v1/bans')).some((b: any) => b.ip === '192.0.2.77'));
    errorOf(await as(op).post('/api/v1/bans', { ip: '192.0.2.78' }), 403, 'forbidden');
    errorOf(await as(aud).del('/api/v1/bans/192.0.2.77'), 403, 'forbidden');
    ok(await as(op).del('/api/v1/bans/192.0.2.77'));
    assert.equal(ok(await as(aud).get('/api/v1/bans')).some((b: any) => b.ip === '192.0.2.77'), false);
    errorOf(await as(op).del('/api/v1/bans/192.0.2.77'), 404, 'not_found');
    errorOf(await as(root).post('/api/v1/bans', { ip: 'not-an-ip' }), 400, 'invalid_request');
    errorOf(await as(root).post('/api/v1/bans', { ip: '127.0.0.1' }), 400, 'invalid_request');
  });

  it('reports quota usage against limits and rescans', async () => {
    ok(await as(root).post('/api/v1/partners', { name: 'initech', password: 'initech-secret', basePath: join(s.dir, 'exchange', 'initech'), inboxQuotaBytes: 10_000 }), 201);
    await writeFile(join(s.dir, 'exchange', 'initech', 'inbox', 'a.txt'), Buffer.alloc(1234));
    const scanned = ok(await as(root).post('/api/v1/quota/rescan'));
    const inbox = scanned.find((u: any) => u.scope === 'folder:initech-inbox');
    assert.deepEqual({ bytes: inbox.bytes, files: inbox.files, quotaBytes: inbox.quotaBytes, users: inbox.users }, { bytes: 1234, files: 1, quotaBytes: 10_000, users: ['initech'] });
    const usage = ok(await as(op).get('/api/v1/quota'));
    assert.equal(usage.find((u: any) => u.scope === 'folder:initech-inbox').bytes, 1234);
    errorOf(await as(op).post('/api/v1/quota/rescan'), 403, 'forbidden');
  });

  it('runs retention as a dry run (nothing deleted) and for real', async () => {
    const dir = join(s.dir, 'old');
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'stale.txt');
    await writeFile(file, 'old');
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
    await utimes(file, tenDaysAgo, tenDaysAgo);
    ok(await as(root).post('/api/v1/folders', { name: 'old', path: dir, retention: { maxAgeDays: 5 } }), 201);
    ok(await as(root).put('/api/v1/users/alice', { ...(await userEntry('alice')), mounts: { '/old': 'old' } }));
    const dry = ok(await as(aud).post('/api/v1/retention/dry-run'));
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.deleted.map((d: any) => d.path), [file]);
    await stat(file);
    errorOf(await as(op).post('/api/v1/retention/run'), 403, 'forbidden');
    const run = ok(await as(root).post('/api/v1/retention/run'));
    assert.deepEqual(run.deleted.map((d: any) => d.path), [file]);
    await assert.rejects(stat(file), /ENOENT/);
  });

  async function userEntry(name: string): Promise<Record<string, unknown>> {
    const { name: _n, passwordSet: _p, lastLoginAt: _l, ...entry } = ok(await as(root).get(`/api/v1/users/${name}`));
    return entry;
  }

  it('shows the certificate and renews it; FTPS and the admin listener present the new one at once', async () => {
    const status = ok(await as(aud).get('/api/v1/certificates'));
    assert.equal(status.certificate.source, 'self-signed');
    assert.equal(status.acme, null);
    const before = await fingerprint(s.adminPort);
    assert.equal(before, status.certificate.serial === undefined ? before : before);
    const notForced = ok(await as(root).post('/api/v1/certificates/renew'));
    assert.equal(notForced.renewed, false, 'the self-signed certificate is not due');
    const renewed = ok(await as(root).post('/api/v1/certificates/renew?force=true'));
    assert.equal(renewed.renewed, true);
    assert.notEqual(renewed.certificate.serial, status.certificate.serial);
    const afterAdmin = await fingerprint(s.adminPort);
    assert.notEqual(afterAdmin, before, 'the admin listener took the new certificate');
    const c = await ControlClient.connect(s.port);
    try {
      await c.read();
      await c.authTls();
      assert.equal((c.socket as tls.TLSSocket).getPeerCertificate().fingerprint256, afterAdmin, 'so did FTPS');
    } finally {
      c.close();
    }
    errorOf(await as(op).post('/api/v1/certificates/renew'), 403, 'forbidden');
  });

  it('searches the audit trail by user, event, path and time, and verifies its chain', async () => {
    errorOf(await as(op).get('/api/v1/audit/records'), 403, 'forbidden');
    const byAdmin = ok(await as(aud).get('/api/v1/audit/records?user=root&event=store_change&limit=500'));
    assert.ok(byAdmin.records.length >= 10, `changes by root: ${byAdmin.records.length}`);
    for (const r of byAdmin.records) {
      assert.equal(r.actor, 'admin:root');
      assert.equal(r.ip, '127.0.0.1');
    }
    const created = byAdmin.records.find((r: any) => r.kind === 'user' && r.name === 'acme' && r.action === 'create');
    assert.ok(created, 'the partner creation is recorded');
    assert.equal(created.after.passwordSet, true);
    assert.equal(JSON.stringify(created).includes('$argon2'), false, 'no password hash in the audit trail');
    const updated = byAdmin.records.find((r: any) => r.kind === 'user' && r.name === 'alice' && r.action === 'update');
    assert.deepEqual(updated.before.mounts, {});
    assert.deepEqual(updated.after.mounts, { '/old': 'old' });
    assert.ok(byAdmin.records.some((r: any) => r.kind === 'ban' && r.action === 'ban' && r.name === '192.0.2.77'));
    assert.ok(byAdmin.records.some((r: any) => r.kind === 'certificate' && r.action === 'renew'));
    const kicks = ok(await as(aud).get('/api/v1/audit/records?user=op&event=store_change'));
    assert.ok(kicks.records.some((r: any) => r.kind === 'session' && r.action === 'kick' && r.before.user === 'globex'));

    const transfers = ok(await as(aud).get('/api/v1/audit/records?event=transfer&path=order.csv'));
    assert.equal(transfers.records.length, 1);
    assert.equal(transfers.records[0].user, 'acme');
    const logins = ok(await as(aud).get('/api/v1/audit/records?user=acme&event=login,login_failed'));
    assert.ok(logins.records.length >= 1 && logins.records.every((r: any) => r.user === 'acme'));
    const future = ok(await as(aud).get(`/api/v1/audit/records?from=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`));
    assert.equal(future.records.length, 0);
    const limited = ok(await as(aud).get('/api/v1/audit/records?limit=2'));
    assert.equal(limited.records.length, 2);
    assert.equal(limited.truncated, true);
    assert.ok(limited.records[0].seq > limited.records[1].seq, 'newest first');
    errorOf(await as(aud).get('/api/v1/audit/records?from=yesterday'), 400, 'invalid_request');

    const verified = ok(await as(aud).post('/api/v1/audit/verify'));
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.checkpointsVerified, true);
    assert.ok(verified.records > 20);
  });

  it('serves health, version and the configuration without secrets, and reloads', async () => {
    const health = ok(await as(aud).get('/api/v1/health'));
    assert.equal(health.ready, true);
    assert.ok(health.uptimeSeconds >= 0);
    const version = ok(await as(aud).get('/api/v1/version'));
    assert.equal(version.name, 'ftpsd');
    const config = ok(await as(op).get('/api/v1/config'));
    assert.equal(config.admin.enabled, true);
    assert.equal(config.listen.host, '127.0.0.1');
    assert.equal(config.acme.eab.hmacKey, '[redacted]');
    assert.equal(config.storage.s3.locations[0].secretAccessKey, '[redacted]');
    assert.equal(config.storage.s3.locations[0].accessKeyId, 'AKID');
    for (const secret of ['eab-secret-value', 's3-secret-value']) assert.equal(JSON.stringify(config).includes(secret), false, 'no secret in the configuration shown');
    errorOf(await as(op).post('/api/v1/reload'), 403, 'forbidden');
    const reload = ok(await as(root).post('/api/v1/reload'));
    assert.deepEqual(reload.configProblems, []);
    assert.equal(reload.certificateChanged, false);
  });

  it('manages admin accounts: a new one must change its one-time password first', async () => {
    const created = ok(await as(root).post('/api/v1/admins', { name: 'carol', role: 'operator' }), 201);
    assert.equal(created.account.mustChangePassword, true);
    const login = ok(await s.login('carol', created.password));
    assert.equal(login.account.mustChangePassword, true);
    const carol = { token: login.token as string };
    errorOf(await as(carol).get('/api/v1/sessions'), 403, 'password_change_required');
    errorOf(await as(carol).post('/api/v1/auth/password', { current: 'wrong-password', password: 'carol-new-password' }), 403, 'invalid_credentials');
    errorOf(await as(carol).post('/api/v1/auth/password', { current: created.password, password: 'short' }), 400, 'invalid_request');
    ok(await as(carol).post('/api/v1/auth/password', { current: created.password, password: 'carol-new-password' }));
    ok(await as(carol).get('/api/v1/sessions'));
    errorOf(await as(carol).get('/api/v1/admins'), 403, 'forbidden');

    assert.ok(ok(await as(root).get('/api/v1/admins')).some((a: any) => a.name === 'carol' && a.role === 'operator'));
    assert.equal(ok(await as(root).get('/api/v1/admins/carol')).mustChangePassword, false);
    ok(await as(root).put('/api/v1/admins/carol', { role: 'auditor', disabled: false }));
    assert.equal(ok(await as(carol).get('/api/v1/auth/me')).role, 'auditor', 'the role applies to the running login');
    const reset = ok(await as(root).post('/api/v1/admins/carol/password-reset'));
    errorOf(await as(carol).get('/api/v1/auth/me'), 401, 'unauthorized');
    assert.equal(ok(await s.login('carol', reset.password)).account.mustChangePassword, true);
    ok(await as(root).put('/api/v1/admins/carol', { role: 'auditor', disabled: true }));
    errorOf(await s.login('carol', reset.password), 401, 'invalid_credentials');
    errorOf(await as(root).put('/api/v1/admins/root', { role: 'operator', disabled: false }), 409, 'conflict');
    errorOf(await as(root).del('/api/v1/admins/root'), 409, 'conflict');
    ok(await as(root).del('/api/v1/admins/carol'));
    errorOf(await as(root).get('/api/v1/admins/carol'), 404, 'not_found');
  });

  it('issues API keys that act with their account role, until revoked', async () => {
    const made = ok(await as(op).post('/api/v1/api-keys', { label: 'monitoring', expiresInDays: 30 }), 201);
    assert.match(made.key, /^fak_[0-9a-f]{12}_/);
    const viaHeader = await s.request('GET', '/api/v1/sessions', { headers: { 'x-api-key': made.key } });
    ok(viaHeader);
    ok(await s.request('GET', '/api/v1/bans', { token: made.key }));
    errorOf(await s.request('POST', '/api/v1/bans', { headers: { 'x-api-key': made.key }, body: { ip: '192.0.2.1' } }), 403, 'forbidden');
    assert.ok(ok(await as(op).get('/api/v1/api-keys')).some((k: any) => k.id === made.apiKey.id && k.lastUsedAt !== null));
    assert.ok(ok(await as(root).get('/api/v1/api-keys')).some((k: any) => k.id === made.apiKey.id), 'admins see every key');
    errorOf(await as(aud).del(`/api/v1/api-keys/${made.apiKey.id}`), 404, 'not_found');
    ok(await as(op).del(`/api/v1/api-keys/${made.apiKey.id}`));
    errorOf(await s.request('GET', '/api/v1/sessions', { headers: { 'x-api-key': made.key } }), 401, 'unauthorized');
  });

  it('needs a TOTP code at login once a second factor is on, and takes each code once', async () => {
    const dave = await s.account('dave', 'auditor');
    const setup = ok(await as(dave).post('/api/v1/auth/totp/setup'));
    assert.match(setup.uri, /^otpauth:\/\/totp\/ftpsd%3Adave\?secret=[A-Z2-7]+/);
    errorOf(await as(dave).post('/api/v1/auth/totp/confirm', { code: '000000' === totpCode(setup.secret, Date.now()) ? '111111' : '000000' }), 400, 'invalid_request');
    ok(await as(dave).post('/api/v1/auth/totp/confirm', { code: totpCode(setup.secret, Date.now()) }));
    errorOf(await s.login('dave', dave.password), 401, 'totp_required');
    // The confirming code's step is used up: the next login waits for the next step's code.
    const next = Date.now() + 30_000;
    const code = totpCode(setup.secret, next);
    errorOf(await s.login('dave', dave.password, code === '123456' ? '654321' : '123456'), 401, 'invalid_credentials');
    const withCode = await s.login('dave', dave.password, code);
    ok(withCode);
    errorOf(await s.login('dave', dave.password, code), 401, 'invalid_credentials');
    assert.equal(ok(await as(dave).get('/api/v1/auth/me')).totp, true);
    ok(await as({ token: withCode.json.token }).del('/api/v1/auth/totp', { code: totpCode(setup.secret, Date.now()) }));
    ok(await s.login('dave', dave.password));
  });

  it('gives each role what it may do and nothing more', async () => {
    // [method, path, body, roles allowed]; an allowed call may still fail for its own reasons (404), never with 403.
    const matrix: Array<[string, string, unknown, string[]]> = [
      ['GET', '/api/v1/users', undefined, ['admin', 'operator', 'auditor']],
      ['GET', '/api/v1/sessions', undefined, ['admin', 'operator', 'auditor']],
      ['GET', '/api/v1/config', undefined, ['admin', 'operator', 'auditor']],
      ['DELETE', '/api/v1/sessions/0123456789ab', undefined, ['admin', 'operator']],
      ['DELETE', '/api/v1/bans/192.0.2.200', undefined, ['admin', 'operator']],
      ['GET', '/api/v1/audit/records', undefined, ['admin', 'auditor']],
      ['POST', '/api/v1/audit/verify', undefined, ['admin', 'auditor']],
      ['POST', '/api/v1/users', { name: 'x-denied', home: '/tmp' }, ['admin']],
      ['PUT', '/api/v1/groups/none/policy', {}, ['admin']],
      ['POST', '/api/v1/partners', { name: 'x-denied-partner' }, ['admin']],
      ['POST', '/api/v1/bans', { ip: '192.0.2.201' }, ['admin']],
      ['GET', '/api/v1/admins', undefined, ['admin']],
      ['POST', '/api/v1/reload', undefined, ['admin']],
      ['GET', '/api/v1/partners/export', undefined, ['admin']],
    ];
    const tokens = { admin: root.token, operator: op.token, auditor: aud.token } as const;
    for (const [method, path, body, allowed] of matrix) {
      for (const [role, token] of Object.entries(tokens)) {
        const r = await s.request(method, path, { token, ...(body === undefined ? {} : { body }) });
        if (allowed.includes(role)) assert.notEqual(r.status, 403, `${role} may ${method} ${path}: ${r.text}`);
        else errorOf(r, 403, 'forbidden');
      }
    }
  });

  it('refuses malformed JSON, wrong types, unknown fields and oversized bodies with a clear 4xx, and changes nothing', async () => {
    const before = { changes: await changeCount(), alice: await userEntry('alice') };
    const put = (raw: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => s.request('PUT', '/api/v1/users/alice', { token: root.token, raw, headers });
    assert.match(errorOf(await put('{"description": "x",'), 400, 'malformed_json'), /not valid JSON/);
    assert.match(errorOf(await put('{"disabled": "yes"}'), 400, 'invalid_request'), /body\.disabled: must be boolean/);
    assert.match(errorOf(await put('{"policy": {"maxSessions": "5"}}'), 400, 'invalid_request'), /body\.policy\.maxSessions: must be integer/);
    assert.match(errorOf(await put('{"permissions": {"/": ["fly"]}}'), 400, 'invalid_request'), /must be equal to one of the allowed values/);
    assert.match(errorOf(await put('{"shell": "/bin/sh"}'), 400, 'invalid_request'), /unknown property "shell"/);
    assert.match(errorOf(await put('{"mounts": {"/x": "no-such-folder"}}'), 400, 'invalid_request'), /unknown folder "no-such-folder"/);
    assert.match(errorOf(await put('{"permissions": {"inbox/": ["list"]}}'), 400, 'invalid_request'), /absolute virtual path/);
    assert.match(errorOf(await put('{"policy": {"allowedNetworks": ["10.0.0.0/33"]}}'), 400, 'invalid_request'), /CIDR/);
    assert.match(errorOf(await put('[]'), 400, 'invalid_request'), /must be object/);
    assert.match(errorOf(await put('description=x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'), /application\/json/);
    const big = JSON.stringify({ description: 'x'.repeat(300_000) });
    assert.match(errorOf(await put(big), 413, 'body_too_large'), /262144 bytes/);
    errorOf(await s.request('POST', '/api/v1/users', { token: root.token, body: { name: '../etc', home: '/tmp' } }), 400, 'invalid_request');
    errorOf(await s.request('POST', '/api/v1/partners', { token: root.token, body: { name: 'bad name' } }), 400, 'invalid_request');
    errorOf(await s.request('POST', '/api/v1/partners', { token: root.token, body: { name: 'netpartner', allowedNetworks: ['nowhere'] } }), 400, 'invalid_request');
    errorOf(await s.request('GET', '/api/v1/audit/records?limit=lots', { token: root.token }), 400, 'invalid_request');
    errorOf(await s.request('GET', '/api/v1/nothing-here', { token: root.token }), 404, 'not_found');
    assert.equal(await changeCount(), before.changes, 'no change was recorded');
    assert.deepEqual(await userEntry('alice'), before.alice, 'alice is as she was');
    assert.equal(ok(await as(root).get('/api/v1/users')).some((u: any) => u.name === 'netpartner' || u.name === '../etc'), false);
  });

  it('exports the partner model and applies a partners file, with a dry run', async () => {
    const exported = await s.request('GET', '/api/v1/partners/export', { token: root.token });
    assert.equal(exported.status, 200);
    assert.match(exported.text, /acme-inbox:/);
    const file = `${exported.text}\ngroups:\n  ops: { permissions: { /: [list] } }\n`;
    const dry = ok(await as(root).post('/api/v1/partners/apply', { file, dryRun: true }));
    assert.deepEqual(dry.changes, ['+ group ops']);
    assert.equal((await s.request('GET', '/api/v1/groups/ops', { token: root.token })).status, 404, 'the dry run changed nothing');
    ok(await as(root).post('/api/v1/partners/apply', { file }));
    ok(await as(root).get('/api/v1/groups/ops'));
    errorOf(await as(root).post('/api/v1/partners/apply', { file: 'users: { x: { groups: [nope] } }' }), 400, 'invalid_request');
  });

  it('ends a token at logout', async () => {
    const eve = await s.account('eve', 'auditor');
    ok(await as(eve).post('/api/v1/auth/logout'));
    errorOf(await as(eve).get('/api/v1/auth/me'), 401, 'unauthorized');
  });
});

/** SHA-256 fingerprint of the certificate a TLS listener presents. */
function fingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('admin logins and the defender', () => {
  let s: AdminServer;
  before(async () => {
    s = await startAdminServer({ config: { defender: { threshold: 3, allowList: ['127.0.0.1'] } } });
    await s.account('root', 'admin');
  });
  after(() => s?.close());

  it('counts failed admin logins against the address and bans it from the admin listener and FTPS', async () => {
    const from = '127.0.0.2';
    for (let i = 0; i < 3; i++) {
      const r = await s.request('POST', '/api/v1/auth/login', { body: { name: 'root', password: `guess-${i}` }, localAddress: from });
      errorOf(r, 401, 'invalid_credentials');
    }
    const blocked = await s.request('POST', '/api/v1/auth/login', { body: { name: 'root', password: 'any' }, localAddress: from });
    assert.match(errorOf(blocked, 403, 'forbidden'), /blocked/);
    const root = await s.account('root2', 'admin');
    const bans = ok(await s.request('GET', '/api/v1/bans', { token: root.token }));
    assert.deepEqual(bans.map((b: any) => b.ip), [from]);
    assert.equal(bans[0]!.reason, 'adminLoginFailure');
    const c = await ControlClient.connect(s.port, '127.0.0.1', from);
    try {
      assert.equal((await c.read())?.code, 421, 'FTPS refuses the banned address too');
    } finally {
      c.close();
    }
    const failures = ok(await s.request('GET', '/api/v1/audit/records?event=admin_login_failed', { token: root.token }));
    assert.equal(failures.records.length, 3);
    assert.equal(failures.records[0].ip, from);
  });
});
