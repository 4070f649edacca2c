import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// PROXY protocol on the passive ports (proxyProtocol.passive), for a balancer that forwards each node's passive range:
// the header of a trusted balancer names the client, and the data connection's address check compares that client
// with the control session's. A missing, malformed or truncated header, or one from anywhere else, ends the data
// connection (425), is logged with its reason, and its addresses are never believed.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const CONTENT = Buffer.from('forwarded by the balancer\n');
const CLIENT = '192.0.2.44';

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 3_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A data connection as the balancer relays it: `header` first (if any), then the client's TLS, resuming `session`. */
function relayedData(port: number, header: string | null, session: Buffer | undefined, localAddress = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve) => {
    const raw = net.connect({ port, host: '127.0.0.1', localAddress }, () => {
      if (header !== null) raw.write(header);
      const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ...(session === undefined ? {} : { session }) });
      const chunks: Buffer[] = [];
      secure.on('data', (c: Buffer) => chunks.push(c));
      secure.on('error', () => undefined);
      secure.on('close', () => resolve(Buffer.concat(chunks)));
    });
    raw.on('error', () => resolve(Buffer.alloc(0)));
  });
}

describe('PROXY protocol on the passive ports', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { proxyProtocol: { trustedCidrs: ['127.0.0.1/32'], headerTimeoutMs: 300, passive: true }, defender: { threshold: 10_000 } } });
    await writeHomeFile(t, USER, 'file.txt', CONTENT);
  });
  after(() => t.close());

  /** A session of CLIENT relayed by the balancer (127.0.0.1), logged in, with a passive port open. */
  async function relayedSession(): Promise<{ c: ControlClient; port: number }> {
    const c = await ControlClient.connectProxied(t.port, `PROXY TCP4 ${CLIENT} 127.0.0.1 51000 2121\r\n`);
    assert.equal((await c.read())?.code, 220);
    assert.equal((await c.login(USER, PASSWORD)).code, 230);
    return { c, port: await c.epsv() };
  }

  test("the balancer's header naming the session's client: the transfer goes through", async () => {
    const { c, port } = await relayedSession();
    try {
      const data = relayedData(port, `PROXY TCP4 ${CLIENT} 127.0.0.1 51001 ${port}\r\n`, c.tlsSession);
      assert.equal((await c.send('RETR file.txt')).code, 150);
      assert.equal((await c.read())?.code, 226);
      assert.deepEqual(await data, CONTENT);
    } finally {
      c.close();
    }
  });

  test('a header naming another client is refused as a data connection from another address, and that address is scored', async () => {
    const { c, port } = await relayedSession();
    try {
      const data = relayedData(port, `PROXY TCP4 203.0.113.66 127.0.0.1 51001 ${port}\r\n`, c.tlsSession);
      assert.equal((await c.send('RETR file.txt')).code, 150);
      const r = await c.read();
      assert.equal(r?.code, 425);
      assert.match(r!.text, /another address/);
      assert.equal((await data).length, 0);
      await waitFor('wrong_address refusal', () => t.logs().find((l) => l.event === 'data_connection_refused' && l.reason === 'wrong_address' && l.peer === '203.0.113.66' && l.expected === CLIENT));
      await waitFor('score of the named address', () => t.logs().find((l) => l.event === 'defender_score' && l.ip === '203.0.113.66'));
      assert.equal(t.logs().some((l) => l.event === 'defender_score' && l.ip === '127.0.0.1'), false, 'the balancer is never scored');
    } finally {
      c.close();
    }
  });

  test('no header, a malformed one or a truncated one from the balancer: 425, logged with the reason', async () => {
    for (const [header, detail] of [
      [null, 'no_header'],
      [`PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n`, 'v1_address'],
      ['PROXY TCP4 192.0.2.44 127.0', 'truncated'],
    ] as const) {
      const { c, port } = await relayedSession();
      try {
        // A truncated header never completes: the client then waits for TLS bytes that never come; cut it short.
        const raw = net.connect({ port, host: '127.0.0.1' }, () => {
          if (header !== null) raw.write(header);
        });
        raw.on('error', () => undefined);
        assert.equal((await c.send('RETR file.txt')).code, 150);
        const r = await c.read();
        assert.equal(r?.code, 425, `after ${JSON.stringify(header)}`);
        assert.match(r!.text, /PROXY header/);
        raw.destroy();
        await waitFor(`refusal ${detail}`, () => t.logs().find((l) => l.event === 'data_connection_refused' && l.reason === 'proxy_header' && l.detail === detail && l.peer === '127.0.0.1'));
      } finally {
        c.close();
      }
    }
  });

  test('a PROXY header from a client that is not a trusted balancer is refused and never believed', async () => {
    // A direct session from 127.0.0.2 (not a balancer): its data connection sends a header naming someone else.
    const c = await ControlClient.connect(t.port, '127.0.0.1', '127.0.0.2');
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.login(USER, PASSWORD)).code, 230);
      const port = await c.epsv();
      const data = relayedData(port, `PROXY TCP4 198.51.100.1 127.0.0.1 1 ${port}\r\n`, c.tlsSession, '127.0.0.2');
      assert.equal((await c.send('RETR file.txt')).code, 150);
      assert.equal((await c.read())?.code, 425);
      assert.equal((await data).length, 0);
      await waitFor('untrusted refusal', () => t.logs().find((l) => l.event === 'data_connection_refused' && l.reason === 'proxy_header' && l.detail === 'untrusted' && l.peer === '127.0.0.2'));
      assert.equal(t.logs().some((l) => JSON.stringify(l).includes('198.51.100.1')), false, "the header's address appears nowhere");
    } finally {
      c.close();
    }
  });
});
