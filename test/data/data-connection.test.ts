import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { onFirstBytes, startTlsDataConnection, type DataConnection } from '../../src/data/data-connection.js';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.js';

// close_notify detection under backpressure: the consumer reads slowly, so TCP has long ended (and the raw socket
// emitted 'end') before the TLS layer decrypts the close_notify at the tail. A complete upload must still count as
// cleanly ended, and a bare FIN must not, on TLS 1.2 and 1.3.

let server: net.Server;
let port: number;
const outcomes: Array<(conn: { clean: boolean; bytes: number }) => void> = [];

before(async () => {
  const { keyPem, certPem } = await createSelfSignedCertificate({ names: ['localhost'] });
  const context = tls.createSecureContext({ key: keyPem, cert: certPem });
  server = net.createServer({ pauseOnConnect: true }, (raw) => {
    onFirstBytes(raw, (first) => {
      const started = startTlsDataConnection(raw, context, '127.0.0.1', 'upload', first, 1 << 20);
      started.socket.once('secure', () => {
        const conn: DataConnection = started.connection();
        let bytes = 0;
        conn.stream.on('data', (d: Buffer) => {
          bytes += d.length;
          conn.stream.pause();
          setTimeout(() => conn.stream.resume(), 2);
        });
        conn.stream.on('end', () => outcomes.shift()?.({ clean: conn.endedCleanly(), bytes }));
      });
      started.socket.on('error', () => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
after(() => server.close());

function send(version: 'TLSv1.2' | 'TLSv1.3', ending: 'close_notify' | 'fin'): Promise<{ clean: boolean; bytes: number }> {
  const result = new Promise<{ clean: boolean; bytes: number }>((r) => outcomes.push(r));
  const raw = net.connect(port, '127.0.0.1', () => {
    const s = tls.connect({ socket: raw, rejectUnauthorized: false, minVersion: version, maxVersion: version }, async () => {
      const chunk = Buffer.alloc(1 << 20, 7);
      for (let i = 0; i < 6; i++) if (!s.write(chunk)) await new Promise((q) => s.once('drain', q));
      if (ending === 'close_notify') s.end();
      else s.write(Buffer.alloc(1), () => raw.end());
    });
    s.on('error', () => undefined);
  });
  raw.on('error', () => undefined);
  return result;
}

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`${version}: close_notify read long after the TCP end still counts as a clean end`, { timeout: 30_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      const r = await send(version, 'close_notify');
      assert.equal(r.bytes, 6 << 20);
      assert.equal(r.clean, true);
    }
  });

  test(`${version}: a bare TCP FIN after the same bytes is a truncation`, { timeout: 30_000 }, async () => {
    const r = await send(version, 'fin');
    assert.equal(r.clean, false);
  });
}
