import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client, FTPError } from 'basic-ftp';
import { stringify } from 'yaml';
import { applyPartnerFile, describeChange } from '../../src/partners/apply.js';
import { parsePartnerFile } from '../../src/partners/partner-file.js';
import { getUsage } from '../../src/store/quota-repo.js';
import { PY_REUSE_FTP_TLS, runCurl, runLftp, runProcess, runPython, type RunResult } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { ENGINES, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { hashPassword, startTestServer, type TestServer } from '../helpers/server.js';

// The partner exchange layout, end to end with real clients, on SQLite and on PostgreSQL: two partners (acme, globex)
// and one internal user (ops). Each partner sees /inbox (a drop box: upload only), /outbox (download only) and
// /archive (a folder templated with its own name); ops sees both partners under /partners. The partners file is
// applied with `ftpsd apply` as an operator would.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');
const PW = { acme: 'acme-secret', globex: 'globex-secret', ops: 'ops-secret' } as const;
const QUOTA_BYTES = 100_000;

async function partnersFile(extra: { reuseUntil?: Date } = {}): Promise<Record<string, unknown>> {
  return {
    folders: {
      'acme-inbox': { path: 'exchange/acme/inbox' },
      'acme-outbox': { path: 'exchange/acme/outbox', retention: { maxAgeDays: 0, afterDownload: true } },
      'globex-inbox': { path: 'exchange/globex/inbox', quota: { bytes: QUOTA_BYTES } },
      'globex-outbox': { path: 'exchange/globex/outbox', retention: { maxAgeDays: 1 } },
      'partner-archive': { path: 'exchange/{user}/archive' },
    },
    groups: {
      partners: {
        mounts: { '/archive': 'partner-archive' },
        permissions: { '/': ['list'], '/inbox': ['upload'], '/outbox': ['list', 'download'], '/archive': ['list', 'download'] },
        policy: { maxSessions: 2, minTlsVersion: 'TLSv1.2' },
      },
      staff: { permissions: { '/': ['list'], '/partners': ['list', 'download', 'upload', 'overwrite', 'delete', 'rename', 'mkdir'] } },
    },
    users: {
      acme: {
        password: await hashPassword(PW.acme),
        groups: ['partners'],
        mounts: { '/inbox': 'acme-inbox', '/outbox': 'acme-outbox' },
        ...(extra.reuseUntil === undefined ? {} : { policy: { reuseException: { reason: 'legacy client without TLS session reuse (ticket 42)', expiresAt: extra.reuseUntil.toISOString() } } }),
      },
      globex: { password: await hashPassword(PW.globex), groups: ['partners'], mounts: { '/inbox': 'globex-inbox', '/outbox': 'globex-outbox' }, policy: { maxSessions: 3 } },
      ops: {
        password: await hashPassword(PW.ops),
        groups: ['staff'],
        mounts: { '/partners/acme/inbox': 'acme-inbox', '/partners/acme/outbox': 'acme-outbox', '/partners/globex/inbox': 'globex-inbox', '/partners/globex/outbox': 'globex-outbox' },
      },
    },
  };
}

const curlUrl = (t: TestServer, user: keyof typeof PW, path: string) => ['--ssl-reqd', '-k', '-u', `${user}:${PW[user]}`, `ftp://127.0.0.1:${t.port}${path}`];

async function basic(t: TestServer, user: keyof typeof PW): Promise<Client> {
  const client = new Client(10_000);
  await client.access({ host: '127.0.0.1', port: t.port, user, password: PW[user], secure: true, secureOptions: { rejectUnauthorized: false } });
  return client;
}

for (const engine of ENGINES) {
  describe(`partner exchange on ${engine}`, () => {
    let pg: TestPostgres | null = null;
    let t: TestServer;
    let configFile: string;
    let storeConfig: Record<string, unknown>;
    const cli = (args: string[], input?: string): Promise<RunResult> => runProcess(process.execPath, [BIN, ...args, '--config', configFile], { cwd: t.dir, env: { FTPSD_CONFIG: '' }, input, timeoutMs: 20_000 });
    const apply = async (doc: Record<string, unknown>, ...flags: string[]) => {
      const file = join(t.dir, 'partners.yaml');
      await writeFile(file, stringify(doc));
      return cli(['apply', '-f', file, ...flags]);
    };
    const at = (...p: string[]) => join(t.dir, 'exchange', ...p);

    before(async () => {
      if (engine === 'postgres') pg = await startPostgres();
      const url = pg === null ? '' : await pg.newDatabase();
      t = await startTestServer({ users: [], config: { defender: { enabled: false }, store: { ...(url === '' ? {} : { url }), pollIntervalMs: 200 } } });
      storeConfig = url === '' ? { path: join(t.storeDir, 'ftpsd.db') } : { url };
      configFile = join(t.dir, 'ftpsd.yaml');
      await writeFile(configFile, stringify({ users: { file: join(t.dir, 'users.yaml') }, store: storeConfig }));
    });
    after(async () => {
      await t?.close();
      await pg?.stop();
    });

    it('apply: a dry run changes nothing, apply makes the store match, export then apply changes nothing, a bad file changes nothing', async () => {
      const doc = await partnersFile();
      const dry = await apply(doc, '--dry-run');
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^\+ user acme$/m);
      assert.match(dry.stdout, /would change 10 entries \(dry run/);
      assert.match((await cli(['user', 'list'])).stdout, /no users/);

      const applied = await apply(doc);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stdout, /^\+ folder partner-archive$/m);
      assert.match(applied.stdout, /^\+ group partners$/m);
      assert.match(applied.stdout, /changed 10 entries/);
      assert.match((await apply(doc)).stdout, /no changes: the store matches the file/);

      const exported = await cli(['export']);
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stdout, /acme:\n\s+password: \$argon2id\$/);
      const back = join(t.dir, 'exported.yaml');
      await writeFile(back, exported.stdout);
      const again = await cli(['apply', '-f', back]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /no changes/);

      const bad = structuredClone(doc) as { users: Record<string, Record<string, unknown>> };
      bad.users.acme!.permissions = { '/inbox': ['upload', 'fly'] };
      bad.users.globex!.mounts = { '/inbox': 'no-such-folder' };
      bad.users.newcomer = { groups: ['partners'] };
      const refused = await apply(bad);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /users\.acme\.permissions\.\/inbox\.1: /, refused.stderr);
      assert.match(refused.stderr, /nothing was changed/);
      const half = structuredClone(doc) as { users: Record<string, Record<string, unknown>> };
      half.users.globex!.mounts = { '/inbox': 'no-such-folder' };
      half.users.newcomer = { groups: ['partners'] };
      const refused2 = await apply(half);
      assert.notEqual(refused2.code, 0);
      assert.match(refused2.stderr, /users\.globex\.mounts\.\/inbox: unknown folder "no-such-folder"/);
      assert.doesNotMatch((await cli(['user', 'list'])).stdout, /newcomer/, 'all or nothing');
      await t.server.syncStore();
      assert.ok(t.logs().some((l) => l.event === 'store_change' && l.action === 'create' && l.kind === 'user' && l.name === 'acme' && typeof l.actor === 'string' && (l.actor as string).startsWith('apply:')), 'each change reaches the audit trail');
      assert.ok(!JSON.stringify(t.logs().filter((l) => l.event === 'store_change')).includes('$argon2'), 'without password hashes');
    });

    it('each partner sees exactly its layout: drop box, outbox, own archive; ops sees both partners', async () => {
      await mkdir(at('acme', 'archive'), { recursive: true });
      await writeFile(at('acme', 'archive', 'old.txt'), 'acme archive\n');
      await mkdir(at('globex', 'archive'), { recursive: true });
      await writeFile(at('globex', 'archive', 'old.txt'), 'globex archive\n');

      const root = await runCurl(['-l', ...curlUrl(t, 'acme', '/')]);
      assert.equal(root.code, 0, root.stderr);
      assert.deepEqual(root.stdout.trim().split(/\r?\n/).sort(), ['archive', 'inbox', 'outbox']);

      const report = join(t.dir, 'report.csv');
      await writeFile(report, 'id,amount\n1,100\n');
      const up = await runCurl(['-T', report, '--tls-max', '1.2', ...curlUrl(t, 'acme', '/inbox/report.csv')]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(await readFile(at('acme', 'inbox', 'report.csv'), 'utf8'), 'id,amount\n1,100\n');

      const listInbox = await runCurl(['-l', ...curlUrl(t, 'acme', '/inbox/')]);
      assert.notEqual(listInbox.code, 0, 'the drop box cannot be listed');
      const fetchInbox = await runCurl(curlUrl(t, 'acme', '/inbox/report.csv'));
      assert.notEqual(fetchInbox.code, 0, 'nor fetched');
      const replace = await runCurl(['-T', report, '--tls-max', '1.2', ...curlUrl(t, 'acme', '/inbox/report.csv')]);
      assert.notEqual(replace.code, 0, 'nor overwritten');
      const denied = t.logs().filter((l) => l.event === 'permission_denied' && l.user === 'acme');
      assert.ok(denied.some((l) => l.permission === 'list' && l.path === '/inbox'));
      assert.ok(denied.some((l) => l.permission === 'overwrite' && l.path === '/inbox/report.csv'));

      const raw = await ControlClient.loggedIn(t.port, 'acme', PW.acme);
      try {
        const r = await raw.send('DELE /inbox/report.csv');
        assert.equal(r.code, 550);
        assert.match(r.text, /no delete permission for \/inbox\/report\.csv/, 'the reply says why');
        await raw.epsv();
        const retr = await raw.send('RETR /inbox/report.csv');
        assert.equal(retr.code, 550);
        assert.match(retr.text, /no download permission/);
        assert.equal((await raw.send('CWD /partners')).code, 550, 'nothing of ops or globex exists for acme');
        assert.equal((await raw.send('CWD ../../exchange/globex')).code, 550);
        assert.equal((await raw.send('SIZE /inbox/report.csv')).code, 550, 'SIZE tells nothing about the drop box');
        assert.equal((await raw.send('RMD /outbox')).code, 550, 'a mount point cannot be removed');
      } finally {
        raw.close();
      }

      // ops sees both partners and puts a file into acme's outbox with basic-ftp.
      const ops = await basic(t, 'ops');
      try {
        assert.deepEqual((await ops.list('/')).map((e) => e.name), ['partners']);
        assert.deepEqual((await ops.list('/partners')).map((e) => e.name).sort(), ['acme', 'globex']);
        assert.deepEqual((await ops.list('/partners/acme/inbox')).map((e) => e.name), ['report.csv']);
        const invoice = join(t.dir, 'invoice.pdf');
        await writeFile(invoice, 'PDF for acme\n');
        assert.equal((await ops.uploadFrom(invoice, '/partners/acme/outbox/invoice.pdf')).code, 226);
        await writeFile(invoice, 'PDF for acme, kept\n');
        assert.equal((await ops.uploadFrom(invoice, '/partners/acme/outbox/unread.pdf')).code, 226);
        await assert.rejects(ops.rename('/partners/acme/inbox/report.csv', '/partners/globex/inbox/report.csv'), (e: unknown) => e instanceof FTPError && e.code === 550, 'no moves between folders');
      } finally {
        ops.close();
      }

      // acme fetches it with ftplib; lftp lists acme's own archive (the templated folder) and not globex's.
      const py = await runPython(`${PY_REUSE_FTP_TLS}
import io
ftp = ftps_login(${t.port}, 'acme', '${PW.acme}')
print(sorted(ftp.nlst('/outbox')))
buf = io.BytesIO()
ftp.retrbinary('RETR /outbox/invoice.pdf', buf.write)
print(buf.getvalue().decode().strip())
ftp.quit()
`);
      assert.equal(py.code, 0, py.stderr);
      assert.deepEqual(py.stdout.trim().split('\n'), ["['invoice.pdf', 'unread.pdf']", 'PDF for acme']);
      const lftp = await runLftp('cat /archive/old.txt', { port: t.port, user: 'acme', password: PW.acme });
      assert.equal(lftp.code, 0, lftp.stderr);
      assert.equal(lftp.stdout, 'acme archive\n');
      const lftpG = await runLftp('cat /archive/old.txt', { port: t.port, user: 'globex', password: PW.globex });
      assert.equal(lftpG.stdout, 'globex archive\n', 'the same folder, templated per user');
    });

    it('group values are inherited and the user overrides them: user show and session limits agree', async () => {
      const show = await cli(['user', 'show', 'globex']);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /maxSessions\s+3 \(user\)/);
      assert.match(show.stdout, /minTlsVersion\s+TLSv1\.2 \(group:partners\)/);
      assert.match(show.stdout, /\/inbox\s+upload \(group:partners\)/);
      assert.match(show.stdout, /\/archive -> folder partner-archive at .*exchange\/globex\/archive \(group:partners\)/);
      assert.match((await cli(['user', 'show', 'acme'])).stdout, /maxSessions\s+2 \(group:partners\)/);

      const open: ControlClient[] = [];
      try {
        for (let i = 0; i < 2; i++) open.push(await ControlClient.loggedIn(t.port, 'acme', PW.acme));
        const third = await ControlClient.connect(t.port);
        open.push(third);
        await third.read();
        const r = await third.login('acme', PW.acme);
        assert.equal(r.code, 530, 'acme: the group allows two sessions');
        assert.match(r.text, /Too many sessions/);
        for (let i = 0; i < 3; i++) open.push(await ControlClient.loggedIn(t.port, 'globex', PW.globex));
      } finally {
        for (const c of open) c.close();
      }
    });

    it('a quota hit mid-upload is cut with 552: nothing visible, usage unchanged', async () => {
      const store = t.server.store;
      const big = join(t.dir, 'big.bin');
      await writeFile(big, Buffer.alloc(QUOTA_BYTES * 3, 0x41));
      const small = join(t.dir, 'small.bin');
      await writeFile(small, Buffer.alloc(1000, 0x42));
      const client = await basic(t, 'globex');
      try {
        assert.equal((await client.uploadFrom(small, '/inbox/small.bin')).code, 226);
      } finally {
        client.close();
      }
      assert.deepEqual(await getUsage(store.db, 'folder:globex-inbox'), { bytes: 1000, files: 1 });
      // The server cuts the data connection when the quota is passed; a client still writing sees a reset there, so
      // the reply is read on the control connection.
      const c = await ControlClient.loggedIn(t.port, 'globex', PW.globex);
      try {
        const port = await c.epsv();
        assert.equal((await c.send('STOR /inbox/big.bin')).code, 150);
        const data = c.dataConnect(port);
        await data.upload(await readFile(big)).catch(() => undefined);
        const reply = await c.read();
        assert.equal(reply?.code, 552);
        assert.match(reply.text, /Quota exceeded: \/inbox holds at most 100000 bytes/);
      } finally {
        c.close();
      }
      assert.equal(existsSync(at('globex', 'inbox', 'big.bin')), false, 'nothing visible');
      const { readdir } = await import('node:fs/promises');
      assert.deepEqual((await readdir(at('globex', 'inbox'))).sort(), ['small.bin'], 'no partial kept either');
      assert.deepEqual(await getUsage(store.db, 'folder:globex-inbox'), { bytes: 1000, files: 1 });
      const scan = await cli(['quota', 'scan']);
      assert.equal(scan.code, 0, scan.stderr);
      assert.match(scan.stdout, /^folder:globex-inbox\t1000 bytes\t1 files\tquota 100000 bytes/m);
    });

    it('retention deletes what is due (after a complete download, or by age), dry run first, each deletion audited', async () => {
      const old = at('globex', 'outbox', 'stale.txt');
      await mkdir(at('globex', 'outbox'), { recursive: true });
      await writeFile(old, 'two days old\n');
      const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
      await utimes(old, twoDaysAgo, twoDaysAgo);
      await writeFile(at('globex', 'outbox', 'fresh.txt'), 'new\n');

      const dry = await cli(['retention', 'run', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would delete .*acme\/outbox\/invoice\.pdf\t\d+ bytes\t[\d.]+ days since downloaded/);
      assert.match(dry.stdout, /would delete .*globex\/outbox\/stale\.txt\t\d+ bytes\t2 days since modified/);
      assert.match(dry.stdout, /2 files and 0 partial uploads would delete \(dry run\)/);
      assert.ok(existsSync(at('acme', 'outbox', 'invoice.pdf')), 'a dry run deletes nothing');

      await t.server.runHousekeeping();
      assert.equal(existsSync(at('acme', 'outbox', 'invoice.pdf')), false, 'deleted after its first complete download');
      assert.ok(existsSync(at('acme', 'outbox', 'unread.pdf')), 'never downloaded: kept');
      assert.equal(existsSync(old), false, 'older than maxAgeDays: deleted');
      assert.ok(existsSync(at('globex', 'outbox', 'fresh.txt')));
      await t.server.syncStore();
      const deletions = t.logs().filter((l) => l.event === 'store_change' && l.action === 'retention_delete');
      assert.deepEqual(deletions.map((l) => (l.name as string).split('/').slice(-3).join('/')).sort(), ['acme/outbox/invoice.pdf', 'globex/outbox/stale.txt']);
    });

    it('a data-session-reuse exception lets a client without reuse in until it lapses by itself; grant and lapse are audited', async () => {
      // Applied in-process (as the admin API will), so the short window is not spent starting a CLI.
      const doc = await partnersFile({ reuseUntil: new Date(Date.now() + 10_000) });
      const until = new Date((doc.users as { acme: { policy: { reuseException: { expiresAt: string } } } }).acme.policy.reuseException.expiresAt);
      const plan = await applyPartnerFile(t.server.store, parsePartnerFile(stringify(doc), 'partners.yaml'), { actor: 'test:grant', dryRun: false });
      assert.deepEqual(plan.map(describeChange), ['~ user acme (policy)']);
      // Plain ftplib: its data connections never resume the control session.
      const noReuse = `
import ftplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ftp = ftplib.FTP_TLS(context=ctx, timeout=10)
ftp.connect('127.0.0.1', ${t.port}); ftp.auth(); ftp.login('acme', '${PW.acme}'); ftp.prot_p()
chunks = []
try:
    ftp.retrbinary('RETR /outbox/unread.pdf', chunks.append)
    print(b''.join(chunks).decode().strip())
except ftplib.error_temp as e:
    print('refused', str(e)[:3])
except OSError:
    # The refused data connection is cut during its handshake; the 425 waits on the control connection.
    try:
        ftp.getresp()
    except ftplib.error_temp as e:
        print('refused', str(e)[:3])
`;
      const during = await runPython(noReuse);
      assert.equal(during.code, 0, during.stderr);
      assert.equal(during.stdout.trim(), 'PDF for acme, kept', 'allowed while the exception is in force');
      const globex = await runPython(noReuse.replace(/acme/g, 'globex').replace(PW.acme, PW.globex).replace('unread.pdf', 'fresh.txt'));
      assert.equal(globex.stdout.trim(), 'refused 425', 'other partners still must resume');

      await new Promise((r) => setTimeout(r, until.getTime() - Date.now() + 200));
      const lapsed = await runPython(noReuse);
      assert.equal(lapsed.stdout.trim(), 'refused 425', 'lapsed by itself');
      await t.server.runHousekeeping();
      await t.server.syncStore();
      const changes = t.logs().filter((l) => l.event === 'store_change' && l.name === 'acme');
      assert.ok(changes.some((l) => l.action === 'update' && JSON.stringify(l.after).includes('ticket 42')), 'the grant is audited');
      assert.ok(changes.some((l) => l.action === 'reuse_exception_lapsed' && JSON.stringify(l.before).includes('ticket 42')), 'the lapse is audited');
      assert.doesNotMatch((await cli(['user', 'show', 'acme'])).stdout, /ticket 42/);
    });

    it('disabling a user closes its session mid-transfer; the upload is not committed', async () => {
      const c = await ControlClient.loggedIn(t.port, 'ops', PW.ops);
      try {
        const port = await c.epsv();
        assert.equal((await c.send('STOR /partners/globex/outbox/half.bin')).code, 150);
        const data = c.dataConnect(port);
        await data.secured;
        await new Promise<void>((r) => data.socket.write(Buffer.alloc(64 * 1024, 1), () => r()));
        const disabled = await cli(['user', 'disable', 'ops']);
        assert.equal(disabled.code, 0, disabled.stderr);
        const reply = await c.read();
        assert.equal(reply?.code, 421);
        assert.match(reply.text, /disabled/);
      } finally {
        c.close();
      }
      assert.equal(existsSync(at('globex', 'outbox', 'half.bin')), false);
      const refused = await runCurl(['-l', ...curlUrl(t, 'ops', '/')]);
      assert.equal(refused.code, 67, 'login refused while disabled');
      assert.equal((await cli(['user', 'enable', 'ops'])).code, 0);
      assert.equal((await runCurl(['-l', ...curlUrl(t, 'ops', '/')])).code, 0);
    });
  });
}

describe('importing an older users file', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: [{ name: 'alice', password: 'alice-secret', permissions: ['list', 'download', 'upload'] }] });
  });
  after(() => t.close());

  it('imports users with their argon2 hashes at first start; upload keeps replacing files as it did', async () => {
    const file = join(t.dir, 'a.txt');
    await writeFile(file, 'one\n');
    const url = ['--ssl-reqd', '-k', '--tls-max', '1.2', '-u', 'alice:alice-secret', `ftp://127.0.0.1:${t.port}/a.txt`];
    assert.equal((await runCurl(['-T', file, ...url])).code, 0);
    await writeFile(file, 'two\n');
    assert.equal((await runCurl(['-T', file, ...url])).code, 0, 'overwrite granted with upload, as before');
    assert.equal(await readFile(join(t.home('alice'), 'a.txt'), 'utf8'), 'two\n');
    const del = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    try {
      assert.equal((await del.send('DELE a.txt')).code, 550, 'delete was not granted and still is not');
    } finally {
      del.close();
    }
    await t.server.syncStore();
    assert.ok(t.logs().some((l) => l.event === 'store_change' && l.action === 'create' && l.name === 'alice' && String(l.actor).startsWith('import:')));
  });
});
