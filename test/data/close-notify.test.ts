import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { ControlClient, DataClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// A complete upload whose close_notify and TCP FIN arrive while the server is still working through earlier bytes
// (a slow disk, a bandwidth limit) must be stored: the close_notify is in the data, even though TCP ended long before
// the TLS layer got to it. And a bare FIN after the same bytes must still be refused.

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let t: TestServer;

before(async () => {
  // The limit makes the server read far behind the client, which has sent everything and closed at once.
  t = await startTestServer({ config: { limits: { uploadBytesPerSecond: 4 * 1024 * 1024 }, defender: { enabled: false } } });
});
after(() => t.close());

test('an upload that ended with close_notify is committed even when the server reads it long after TCP ended', async () => {
  const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
  const body = randomBytes(3 * 1024 * 1024);
  const port = await c.epsv();
  const data = c.dataConnect(port);
  assert.equal((await c.send('STOR slow.bin')).code, 150);
  await data.upload(body);
  const done = await c.read(30_000);
  assert.equal(done?.code, 226, done?.text);
  assert.equal(sha256(await readFile(join(t.home('alice'), 'slow.bin'))), sha256(body));
  c.close();
});

test('the same bytes ended by a bare TCP FIN (no close_notify) are not committed', async () => {
  const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
  const body = randomBytes(3 * 1024 * 1024);
  const port = await c.epsv();
  const raw = net.connect({ port, host: '127.0.0.1' });
  const session = c.tlsSession;
  const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ...(session ? { session } : {}) });
  const data = new DataClient(secure);
  assert.equal((await c.send('STOR cut.bin')).code, 150);
  assert.ok(await data.secured);
  await new Promise<void>((resolve) => secure.write(body, () => resolve()));
  raw.end(); // FIN under TLS: what a killed client or a truncation attack looks like
  const done = await c.read(30_000);
  assert.equal(done?.code, 426, done?.text);
  await assert.rejects(readFile(join(t.home('alice'), 'cut.bin')), { code: 'ENOENT' });
  c.close();
});
