import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// RFC 959 §4.1.3: ABOR during a transfer closes the data connection; the transfer command is answered 426 and then
// ABOR itself 226, in that order. STAT and ABOR are read while the transfer runs (the control socket is never paused).

const USER = 'alice';
const PASSWORD = 'alice-secret';
const BIG = 64 * 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A data client that reads the first chunk and then stops reading, so the server is mid-transfer for sure. */
function stallingDataClient(c: ControlClient, port: number): { firstChunk: Promise<number>; socket: tls.TLSSocket } {
  const session = c.tlsSession;
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost', ...(session ? { session } : {}) });
  socket.on('error', () => undefined);
  const firstChunk = new Promise<number>((resolve, reject) => {
    socket.once('data', (b: Buffer) => {
      socket.pause();
      resolve(b.length);
    });
    socket.once('close', () => reject(new Error('data connection closed before any byte')));
  });
  return { firstChunk, socket };
}

describe('ABOR and STAT during a transfer', () => {
  let t: TestServer;
  let big: Buffer;
  before(async () => {
    t = await startTestServer();
    big = randomBytes(BIG);
    await writeHomeFile(t, USER, 'big.bin', big);
    await writeHomeFile(t, USER, 'small.txt', 'small\n');
  });
  after(() => t.close());

  test('ABOR mid-download: 426 for RETR, then 226 for ABOR; the session transfers again afterwards', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      assert.equal((await c.login(USER, PASSWORD)).code, 230);
      const port = await c.epsv();
      const data = stallingDataClient(c, port);
      assert.equal((await c.send('RETR big.bin')).code, 150);
      assert.ok((await data.firstChunk) > 0);

      const stat = await c.send('STAT');
      assert.equal(stat.code, 211, stat.text);
      assert.match(stat.text, /transfer is in progress/);

      c.write('ABOR\r\n');
      const first = await c.read();
      const second = await c.read();
      assert.equal(first?.code, 426, `RETR is answered first: ${first?.text}`);
      assert.equal(second?.code, 226, `then ABOR: ${second?.text}`);
      data.socket.destroy();

      const audit = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === '/big.bin').at(-1);
      assert.equal(audit?.result, 'aborted');
      const sent = audit?.bytes as number;
      assert.ok(sent > 0 && sent < BIG, `the audit shows a partial download (${sent} bytes)`);

      // Same session, next transfer: a full, correct download.
      const port2 = await c.epsv();
      const d2 = c.dataConnect(port2);
      assert.equal((await c.send('RETR small.txt')).code, 150);
      assert.equal((await c.read())?.code, 226);
      assert.equal((await d2.received).toString(), 'small\n');
    } finally {
      c.close();
    }
  });

  test('ABOR mid-upload: 426 then 226, and nothing is stored under the name', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      assert.equal((await c.login(USER, PASSWORD)).code, 230);
      const port = await c.epsv();
      const data = c.dataConnect(port);
      assert.equal((await c.send('STOR aborted.bin')).code, 150);
      assert.ok(await data.secured);
      await new Promise<void>((resolve) => data.socket.write(randomBytes(256 * 1024), () => resolve()));
      c.write('ABOR\r\n');
      assert.equal((await c.read())?.code, 426);
      assert.equal((await c.read())?.code, 226);
      assert.equal(existsSync(join(t.home(USER), 'aborted.bin')), false);
      const audit = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === '/aborted.bin').at(-1);
      assert.equal(audit?.result, 'aborted');
      assert.equal((await c.send('NOOP')).code, 200);
    } finally {
      c.close();
    }
  });

  test('ABOR with no transfer running is 225; STAT with none says so', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      await c.login(USER, PASSWORD);
      assert.equal((await c.send('ABOR')).code, 225);
      const stat = await c.send('STAT');
      assert.equal(stat.code, 211);
      assert.match(stat.text, /No data connection/);
    } finally {
      c.close();
    }
  });

  test('a 64 MiB download that is not aborted arrives whole', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      await c.login(USER, PASSWORD);
      const port = await c.epsv();
      const d = c.dataConnect(port);
      assert.equal((await c.send('RETR big.bin')).code, 150);
      const r = await c.read(30_000);
      assert.equal(r?.code, 226, r?.text);
      assert.equal(sha256(await d.received), sha256(big));
    } finally {
      c.close();
    }
  });
});
