import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** Parses the Prometheus text format into "name{labels}" → value. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (m === null) continue;
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

async function get(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('Prometheus metrics', () => {
  let t: TestServer;
  let metricsPort: number;

  before(async () => {
    t = await startTestServer({ config: { metrics: { enabled: true, host: '127.0.0.1', port: 0 } } });
    assert.ok(t.server.metricsPort !== null, 'the metrics listener runs when metrics.enabled');
    metricsPort = t.server.metricsPort;
  });
  after(async () => {
    await t.close();
  });

  test('a scripted session shows up in ftpsd_* series', async () => {
    const bad = await ControlClient.connect(t.port);
    await bad.read();
    await bad.authTls();
    await bad.send('USER alice');
    assert.equal((await bad.send('PASS wrong')).code, 530);
    bad.close();

    const c = await ControlClient.connect(t.port);
    await c.read();
    assert.equal((await c.login('alice', 'alice-secret')).code, 230);
    assert.equal((await c.send('XYZW')).code, 500);

    const payload = Buffer.alloc(100_000, 7);
    const port = await c.epsv();
    assert.equal((await c.send('STOR up.bin')).code, 150);
    await c.dataConnect(port).upload(payload);
    assert.equal((await c.read())?.code, 226);
    assert.deepEqual(await readFile(join(t.home('alice'), 'up.bin')), payload);

    // A data connection that does not resume the control session is refused.
    const port2 = await c.epsv();
    assert.equal((await c.send('RETR up.bin')).code, 150);
    const refused = c.dataConnect(port2, { session: null });
    await refused.received;
    assert.equal((await c.read())?.code, 425);

    const res = await get(metricsPort, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type ?? '', /text\/plain/);
    const m = parseExposition(res.body);
    const names = [...m.keys()].map((k) => k.replace(/\{.*$/, ''));
    assert.ok(names.length > 20);
    assert.deepEqual(names.filter((n) => !n.startsWith('ftpsd_')), [], 'every series is named ftpsd_*');

    assert.equal(m.get('ftpsd_sessions_total'), 2);
    assert.equal(m.get('ftpsd_sessions_open'), 1);
    assert.equal(m.get('ftpsd_logins_total{result="ok"}'), 1);
    assert.equal(m.get('ftpsd_logins_total{result="failed"}'), 1);
    assert.equal(m.get('ftpsd_commands_total{verb="STOR",class="2xx"}'), 1);
    assert.equal(m.get('ftpsd_commands_total{verb="RETR",class="4xx"}'), 1);
    assert.equal(m.get('ftpsd_commands_total{verb="PASS",class="2xx"}'), 1);
    assert.equal(m.get('ftpsd_commands_total{verb="PASS",class="5xx"}'), 1);
    assert.equal(m.get('ftpsd_commands_total{verb="other",class="5xx"}'), 1, 'unknown verbs share the label "other"');
    assert.equal(m.get('ftpsd_commands_total{verb="XYZW",class="5xx"}'), undefined);
    assert.equal(m.get('ftpsd_transfers_total{direction="upload",result="ok"}'), 1);
    assert.equal(m.get('ftpsd_transfer_bytes_total{direction="upload",result="ok"}'), payload.length);
    assert.equal(m.get('ftpsd_data_connections_total{result="resumed"}'), 1);
    assert.equal(m.get('ftpsd_data_connections_total{result="not_resumed_no_ticket"}'), 1);
    assert.equal(m.get('ftpsd_data_connections_total{result="wrong_address"}'), 0);
    assert.equal(m.get('ftpsd_passive_ports_in_use'), 0);
    assert.equal(m.get('ftpsd_passive_ports_size'), t.server.config.pasv.maxPort - t.server.config.pasv.minPort + 1);
    assert.equal(m.get('ftpsd_passive_ports_exhausted_total'), 0);
    assert.equal(m.get('ftpsd_bans_active'), 0);
    assert.equal(m.get('ftpsd_certificate_expiry_timestamp_seconds'), Date.parse(t.server.certStore.current().leaf.validTo) / 1000);
    assert.equal(m.get('ftpsd_ready'), 1);
    assert.ok(m.has('ftpsd_nodejs_eventloop_lag_p99_seconds'), 'event-loop delay is exported');
    c.close();
  });

  test('/healthz and /readyz answer; unknown paths are 404', async () => {
    assert.deepEqual([(await get(metricsPort, '/healthz')).status, (await get(metricsPort, '/readyz')).status], [200, 200]);
    assert.equal((await get(metricsPort, '/')).status, 404);
  });

  test('/readyz turns 503 when the certificate has expired', async () => {
    const good = t.server.certStore.current();
    const past = new Date(Date.now() - 10 * 86_400_000);
    const expired = await createSelfSignedCertificate({ names: ['localhost'], now: past, validityDays: 1 });
    t.server.certStore.install({ ...expired, source: 'file' });
    try {
      const res = await get(metricsPort, '/readyz');
      assert.equal(res.status, 503);
      assert.match(res.body, /certificate expired/);
      assert.equal((await get(metricsPort, '/healthz')).status, 200, 'the process is still alive');
      const m = parseExposition((await get(metricsPort, '/metrics')).body);
      assert.equal(m.get('ftpsd_ready'), 0);
    } finally {
      t.server.certStore.install(good);
    }
    assert.equal((await get(metricsPort, '/readyz')).status, 200);
  });
});

describe('metrics disabled', () => {
  test('no listener is started', async () => {
    const t = await startTestServer();
    try {
      assert.equal(t.server.metricsPort, null);
      assert.equal(t.server.readiness().ready, true);
    } finally {
      await t.close();
    }
  });
});
