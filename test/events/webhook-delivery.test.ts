import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.js';
import { CURL_UPLOAD_TLS_ARGS, PY_REUSE_FTP_TLS, runCurl, runLftp, runPython } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rule, setHooks, webhook } from './hooks.js';
import { startReceiver, type Receiver } from './receiver.js';

// Uploads with curl, lftp and Python's ftplib each reach a real HTTP receiver as a signed webhook whose payload says
// who uploaded what, where it is stored, its SHA-256 and over which TLS; an HTTPS receiver with its own CA too.

const SECRET = 'whsec-test-0123456789';
const SHORT = { pollIntervalMs: 200, retryMinMs: 200, retryMaxMs: 1_000 };

describe('webhook deliveries', () => {
  let t: TestServer;
  let rx: Receiver;
  let rxTls: Receiver;
  let src: string;

  before(async () => {
    rx = await startReceiver({ secret: SECRET });
    const pair = await createSelfSignedCertificate({ names: ['127.0.0.1'] });
    rxTls = await startReceiver({ secret: 'tls-secret', tls: { key: pair.keyPem, cert: pair.certPem } });
    t = await startTestServer({ config: { events: { ...SHORT, node: 'node-a' }, metrics: { enabled: true, host: '127.0.0.1', port: 0 } } });
    await setHooks(
      t,
      [webhook('erp', rx.url, SECRET), webhook('erp-tls', rxTls.url, 'tls-secret', { ca: pair.certPem }), webhook('erp-tls-untrusted', rxTls.url, 'tls-secret')],
      [rule('uploads', ['upload'], ['erp'], { paths: ['/in/**', '/*.bin'] }), rule('downloads-tls', ['download'], ['erp-tls']), rule('mkdir-untrusted', ['mkdir'], ['erp-tls-untrusted'])],
    );
    src = join(t.dir, 'src.bin');
  });
  after(async () => {
    await t?.close();
    await rx?.close();
    await rxTls?.close();
  });

  it('curl, lftp and ftplib uploads arrive signed, with the whole v1 payload', async () => {
    const content = Buffer.alloc(150_000, 'x');
    await writeFile(src, content);
    const sha = createHash('sha256').update(content).digest('hex');
    const url = `ftp://127.0.0.1:${t.port}`;
    const curl = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', 'alice:alice-secret', '--ftp-create-dirs', '-T', src, `${url}/in/curl.bin`]);
    assert.equal(curl.code, 0, curl.stderr);
    const lftp = await runLftp(`put ${src} -o lftp.bin`, { port: t.port, user: 'alice', password: 'alice-secret' });
    assert.equal(lftp.code, 0, lftp.stderr);
    const py = await runPython(`${PY_REUSE_FTP_TLS}
ftp = ftps_login(${t.port}, 'alice', 'alice-secret')
ftp.sendcmd('CLNT ftplib-events-test')
with open(${JSON.stringify(src)}, 'rb') as f:
    ftp.storbinary('STOR in/ftplib.bin', f)
ftp.quit()
`);
    assert.equal(py.code, 0, py.stderr);

    const got = await rx.waitFor(3);
    const byPath = new Map(got.map((r) => [r.event.path, r]));
    assert.deepEqual([...byPath.keys()].sort(), ['/in/curl.bin', '/in/ftplib.bin', '/lftp.bin']);
    for (const [path, r] of byPath) {
      assert.ok(r.signatureValid, `signature of ${String(path)} verifies with the endpoint's secret`);
      assert.equal(r.headers['ftpsd-event-id'], r.event.id);
      assert.equal(r.headers['content-type'], 'application/json');
      const e = r.event;
      assert.equal(e.v, 1);
      assert.equal(e.event, 'upload');
      assert.equal(e.node, 'node-a');
      assert.equal(e.user, 'alice');
      assert.deepEqual(e.groups, []);
      assert.equal(e.ip, '127.0.0.1');
      assert.match(String(e.session), /^[0-9a-f]{12}$/);
      assert.equal(e.storagePath, join(t.home('alice'), String(path)));
      assert.equal(e.size, content.length);
      assert.equal(e.bytes, content.length);
      assert.equal(e.sha256, sha);
      assert.match(String(e.tlsVersion), /^TLSv1\.[23]$/);
      assert.ok(typeof e.tlsCipher === 'string' && e.tlsCipher.length > 0);
      assert.equal(e.resumed, true);
      assert.equal(e.result, 'ok');
      assert.equal(e.code, 226);
      assert.ok(Math.abs(Date.parse(String(e.time)) - Date.now()) < 60_000);
      for (const k of ['toPath', 'reason']) assert.equal(e[k], null, `${k} is present and null`);
    }
    assert.equal(byPath.get('/in/ftplib.bin')!.event.client, 'ftplib-events-test');
    assert.equal(byPath.get('/in/curl.bin')!.event.client, null);
    // The signature is over this body: one changed byte and it no longer verifies.
    const one = byPath.get('/lftp.bin')!;
    const { verifySignature } = await import('./receiver.js');
    const tampered = Buffer.from(one.body.toString().replace('"alice"', '"mallory"'));
    assert.equal(verifySignature(SECRET, one.headers, tampered), false);
    assert.equal(verifySignature('other-secret', one.headers, one.body), false);
  });

  it('an https receiver is reached with the CA configured for it, and refused without', async () => {
    const py = await runPython(`${PY_REUSE_FTP_TLS}
import io
ftp = ftps_login(${t.port}, 'alice', 'alice-secret')
ftp.retrbinary('RETR lftp.bin', io.BytesIO().write)
ftp.mkd('made-here')
ftp.quit()
`);
    assert.equal(py.code, 0, py.stderr);
    const [dl] = await rxTls.waitFor(1, 20_000, (r) => r.event.event === 'download');
    assert.ok(dl!.signatureValid);
    assert.equal(dl!.event.path, '/lftp.bin');
    assert.equal(dl!.event.size, 150_000);
    assert.equal(dl!.event.resumed, true);
    // The same endpoint without its CA: every attempt fails certificate verification, nothing arrives.
    const deliveries = await waitForDeliveryError(t, 'erp-tls-untrusted');
    assert.match(deliveries, /self[- ]signed|certificate/i);
    assert.equal(rxTls.received.filter((r) => r.event.event === 'mkdir').length, 0);
  });

  it('exports ftpsd_events_* metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${t.server.metricsPort}/metrics`);
    const text = await res.text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    assert.ok(value('ftpsd_events_queued_total') >= 5, text.split('\n').filter((l) => l.startsWith('ftpsd_events')).join('\n'));
    assert.ok(value('ftpsd_events_delivered_total') >= 4);
    assert.ok(value('ftpsd_events_failed_total') >= 1, 'the untrusted endpoint failed');
    assert.ok(value('ftpsd_events_delivery_latency_seconds_count') >= 4);
    assert.ok(value('ftpsd_events_pending') >= 1, 'the untrusted delivery waits for its retry');
  });
});

async function waitForDeliveryError(t: TestServer, action: string): Promise<string> {
  const { listDeliveries } = await import('../../src/store/event-repo.js');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const d = (await listDeliveries(t.server.store.db)).find((x) => x.action === action && x.lastError !== null);
    if (d !== undefined) return d.lastError!;
    if (Date.now() > deadline) throw new Error(`no failed attempt of ${action}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
