import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { Client as BasicFtpClient } from 'basic-ftp';
import type { AcmeError } from '../../src/acme/acme-error.js';
import type { InstalledCertificate } from '../../src/tls/cert-store.js';
import { ControlClient } from '../helpers/control-client.js';
import { type Pebble, acmeTestSettings, chainVerifies, startPebble } from '../helpers/pebble.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

// Renewal on a running server: pebble issues certificates that live VALIDITY_SECONDS and the server renews when half
// of that is left. New control sessions get the new certificate at once; sessions opened before keep their own TLS
// context, so their data connections keep resuming the control session (and are accepted) across the swap. With the
// CA gone, a due renewal fails loudly and the current certificate keeps serving.

const VALIDITY_SECONDS = 12;
/** Longer than one renewal interval (half the lifetime) plus an order. */
const EVENT_TIMEOUT_MS = 15_000;
const USER = 'alice';
const PASSWORD = 'alice-renewal-pw';

interface AuditTransfer {
  sid: string;
  direction: 'upload' | 'download';
  path: string;
  bytes: number;
  resumed: boolean;
  result: string;
}

describe('ftpsd renews its ACME certificate while sessions stay open', () => {
  let pebble: Pebble;
  let work: string;
  let srv: TestServer;
  let first: InstalledCertificate;
  let issuedMs: number;
  const clients: ControlClient[] = [];
  const ftpClients: BasicFtpClient[] = [];

  before(async () => {
    pebble = await startPebble({ certificateValidityPeriodSeconds: VALIDITY_SECONDS });
    work = await mkdtemp(join(tmpdir(), 'ftpsd-acme-renewal-'));
    const started = Date.now();
    srv = await startTestServer({
      users: [{ name: USER, password: PASSWORD }],
      config: {
        acme: {
          ...acmeTestSettings(pebble, join(work, 'acme')),
          // The fraction rule decides: 1e-6 days is under 0.1 s.
          renewBeforeDays: 1e-6,
          renewBeforeFraction: 0.5,
          retryMinMs: 300,
          retryMaxMs: 1_000,
        },
      },
    });
    first = await srv.server.acme!.installed();
    issuedMs = Date.now() - started;
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const c of ftpClients) c.close();
    await srv?.close();
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function connect(): Promise<ControlClient> {
    const c = await ControlClient.connect(srv.port);
    clients.push(c);
    assert.equal((await c.read())?.code, 220);
    return c;
  }

  /** AUTH TLS; returns the serial of the certificate in the handshake. */
  async function authTls(c: ControlClient, options: Parameters<ControlClient['authTls']>[0] = {}): Promise<string | undefined> {
    assert.equal((await c.authTls(options)).code, 234);
    // Read at once: Node's TLS 1.3 client forgets the peer certificate when the server's session tickets arrive.
    return (c.socket as TLSSocket).getPeerX509Certificate()?.serialNumber;
  }

  /** AUTH TLS, PBSZ 0, PROT P, USER, PASS; returns the client and the serial it saw. */
  async function loggedIn(): Promise<{ client: ControlClient; serial: string | undefined }> {
    const client = await connect();
    const serial = await authTls(client);
    assert.equal((await client.send('PBSZ 0')).code, 200);
    assert.equal((await client.send('PROT P')).code, 200);
    assert.equal((await client.send(`USER ${USER}`)).code, 331);
    const r = await client.send(`PASS ${PASSWORD}`);
    assert.equal(r.code, 230, r.text);
    return { client, serial };
  }

  async function upload(c: ControlClient, name: string, body: Buffer): Promise<void> {
    const data = c.dataConnect(await c.epsv());
    const opening = await c.send(`STOR ${name}`);
    assert.equal(opening.code, 150, opening.text);
    await data.upload(body);
    const done = await c.read();
    assert.equal(done?.code, 226, done?.text);
  }

  async function download(c: ControlClient, name: string): Promise<Buffer> {
    const data = c.dataConnect(await c.epsv());
    const opening = await c.send(`RETR ${name}`);
    assert.equal(opening.code, 150, opening.text);
    const done = await c.read();
    assert.equal(done?.code, 226, done?.text);
    return data.received;
  }

  /** The audit record of a transfer, waited for (bounded): it is written when the transfer ends. */
  async function auditedTransfer(path: string, direction: AuditTransfer['direction']): Promise<AuditTransfer> {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const found = srv.logs().find((l) => l.audit === true && l.event === 'transfer' && l.path === path && l.direction === direction);
      if (found !== undefined) return found as unknown as AuditTransfer;
      assert.ok(Date.now() < deadline, `no audit record for ${direction} ${path}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('renews by itself; new sessions see the new serial, a session opened before keeps transferring with resumption', async (t) => {
    const acme = srv.server.acme!;
    assert.ok(chainVerifies(first.certPem, pebble.rootPem));
    const renewAt = new Date(acme.status().renewAt ?? 0).getTime();

    // Session A (raw client) and session C (basic-ftp, a real client library) log in before the renewal.
    const { client: a, serial: aSerial } = await loggedIn();
    assert.equal(aSerial, first.leaf.serialNumber);
    await upload(a, 'before.bin', randomBytes(64 * 1024));
    assert.equal((await auditedTransfer('/before.bin', 'upload')).resumed, true);
    const c = new BasicFtpClient(10_000);
    ftpClients.push(c);
    await c.access({ host: '127.0.0.1', port: srv.port, user: USER, password: PASSWORD, secure: true, secureOptions: { ca: pebble.rootPem, servername: 'ftps.test' } });
    assert.ok(Date.now() < renewAt, `sessions opened before the renewal was due (${renewAt - Date.now()} ms left)`);
    const sessionsBefore = srv.server.sessionCount();

    const [second] = (await once(srv.server.certStore, 'change', { signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) })) as [InstalledCertificate];
    const renewedAfterDueMs = Date.now() - renewAt;
    assert.equal(second.source, 'acme');
    assert.notEqual(second.leaf.serialNumber, first.leaf.serialNumber);
    assert.ok(chainVerifies(second.certPem, pebble.rootPem));
    const issued = srv.logs().filter((l) => l.msg === 'acme certificate issued');
    assert.deepEqual(issued.map((l) => l.trigger), ['initial', 'scheduled']);
    assert.ok(srv.logs().some((l) => l.audit === true && l.event === 'certificate_change' && l.serial === second.leaf.serialNumber && l.previousSerial === first.leaf.serialNumber));

    // A new session B gets the new certificate in its handshake, verified against pebble's root.
    const b = await connect();
    assert.equal(await authTls(b, { ca: pebble.rootPem, rejectUnauthorized: true, servername: 'ftps.test' }), second.leaf.serialNumber);

    // Session A: same control connection and TLS session, and its data connections still resume it.
    assert.equal(a.closed, false);
    const body = randomBytes(256 * 1024);
    await upload(a, 'after.bin', body);
    assert.deepEqual(await download(a, 'after.bin'), body);
    for (const direction of ['upload', 'download'] as const) {
      const rec = await auditedTransfer('/after.bin', direction);
      assert.equal(rec.resumed, true, `${direction} on session A resumed the control session`);
      assert.equal(rec.result, 'ok');
      assert.equal(rec.bytes, body.length);
    }

    // Session C, the client library: upload and download after the swap.
    await c.uploadFrom(Readable.from([body]), 'after-c.bin');
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    await c.downloadTo(sink, 'after-c.bin');
    assert.deepEqual(Buffer.concat(chunks), body);
    assert.equal((await auditedTransfer('/after-c.bin', 'download')).resumed, true);

    // No connection was dropped: A and C are still there, B joined.
    assert.equal(srv.server.sessionCount(), sessionsBefore + 1);
    assert.equal((await a.send('NOOP')).code, 200);
    t.diagnostic(`initial issuance installed ${issuedMs} ms after server start; renewal installed ${renewedAfterDueMs} ms after it was due (order ${String(issued[1]?.ms)} ms)`);
  });

  it('with the CA down a due renewal fails, is logged as an error, and the current certificate keeps serving', async (t) => {
    const acme = srv.server.acme!;
    const current = srv.server.certStore.current();
    const dueAt = new Date(acme.status().renewAt ?? 0).getTime();
    await pebble.stop();

    const [error] = (await once(acme, 'renewalFailed', { signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) })) as [AcmeError];
    const failedAfterDueMs = Date.now() - dueAt;
    assert.equal(error.reason, 'ca_unreachable');
    assert.equal(srv.server.certStore.current(), current, 'the current certificate stays installed');

    // A new session still handshakes, with the certificate that was current before the failure.
    assert.equal(await authTls(await connect()), current.leaf.serialNumber);

    const failed = srv.logs().filter((l) => l.msg === 'acme renewal failed');
    assert.ok(failed.length >= 1);
    assert.equal(failed[0]?.level, 50, 'logged at error level');
    assert.equal(failed[0]?.trigger, 'scheduled');
    assert.match(String(failed[0]?.detail), /ECONNREFUSED/);
    assert.ok(typeof failed[0]?.msLeft === 'number' && failed[0].msLeft > 0, 'the time left is logged');
    assert.ok(srv.logs().some((l) => l.audit === true && l.event === 'acme_renewal_failed'));
    assert.equal(srv.server.readiness().ready, true, 'still ready while the certificate is valid');
    t.diagnostic(`renewal failure logged ${failedAfterDueMs} ms after it was due; retry in ${String(failed[0]?.retryInMs)} ms`);
  });
});
