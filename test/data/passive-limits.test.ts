import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Passive ports are a shared, small resource: a few accounts must not be able to hold all of them, a listener
// nobody uses is given back, and a data connection that never carries a transfer is closed.

const users = ['u1', 'u2', 'u3', 'u4'].map((name) => ({ name, password: `${name}-secret` }));
const [U1, U2, U3, U4] = users as [(typeof users)[0], (typeof users)[0], (typeof users)[0], (typeof users)[0]];

async function loggedInFrom(t: TestServer, user: { name: string; password: string }, localAddress: string): Promise<ControlClient> {
  const c = await ControlClient.connect(t.port, '127.0.0.1', localAddress);
  assert.equal((await c.read())?.code, 220);
  const r = await c.login(user.name, user.password);
  assert.equal(r.code, 230, r.text);
  return c;
}

/** Milliseconds until the server closes `socket`, or null when it is still open after `limitMs`. */
function closedWithin(socket: net.Socket, limitMs: number): Promise<number | null> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), limitMs);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

describe('passive listener caps', () => {
  it('stops a few users from holding every passive port; another user still gets one', async () => {
    // The test server's range has 20 ports: the default caps are a quarter of it, 5 per user and per address.
    const s = await startTestServer({ users, config: { defender: { threshold: 1_000 } } });
    const clients: ControlClient[] = [];
    try {
      assert.equal(s.server.passivePorts.size, 20);
      const replies: string[] = [];
      // u1 from 127.0.0.2 and u2 from 127.0.0.3, six sessions each, each session holding one EPSV listener.
      for (const [user, addr] of [[U1, '127.0.0.2'], [U2, '127.0.0.3']] as const) {
        for (let i = 0; i < 6; i++) {
          const c = await loggedInFrom(s, user, addr);
          clients.push(c);
          replies.push(`${user.name} ${(await c.send('EPSV')).text}`);
        }
      }
      const refused = replies.filter((r) => r.includes('425'));
      assert.deepEqual(refused.map((r) => r.split(' ')[0]), ['u1', 'u2'], replies.join('\n'));
      assert.match(refused[0]!, /425 .*passive ports.*your user.*5/i);
      assert.equal(s.server.passivePorts.inUse, 10);

      // u3 and u4 share 127.0.0.4: five listeners between them, then the address is at its cap.
      const shared: string[] = [];
      for (const user of [U3, U4, U3, U4, U3, U4]) {
        const c = await loggedInFrom(s, user, '127.0.0.4');
        clients.push(c);
        shared.push((await c.send('EPSV')).text);
      }
      assert.equal(shared.filter((r) => r.startsWith('229')).length, 5, shared.join('\n'));
      assert.match(shared[5]!, /425 .*passive ports.*your address.*5/i);

      // Someone else still gets a port, and a transfer through it works.
      const other = await loggedInFrom(s, U4, '127.0.0.5');
      clients.push(other);
      const port = await other.epsv();
      const data = other.dataConnect(port, { localAddress: '127.0.0.5' });
      assert.equal((await other.send('LIST')).code, 150);
      assert.equal((await other.read())?.code, 226);
      await data.received;

      // A session that gives its listener back (ABOR here) frees its place under the cap.
      assert.equal((await clients[0]!.send('ABOR')).code, 225);
      assert.match((await clients[5]!.send('EPSV')).text, /^229 /);
    } finally {
      for (const c of clients) c.close();
      await s.close();
    }
  });
});

describe('passive listeners and data connections that are never used', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: [U1],
      config: { pasv: { acceptTimeoutMs: 60_000, idleListenerTimeoutMs: 800 }, tls: { handshakeTimeoutMs: 500 }, defender: { threshold: 1_000 } },
    });
  });
  after(() => t.close());

  it('gives back a passive port whose transfer command does not come within pasv.idleListenerTimeoutMs', async () => {
    const c = await loggedInFrom(t, U1, '127.0.0.1');
    try {
      await c.epsv();
      assert.equal(t.server.passivePorts.inUse, 1);
      const started = Date.now();
      while (t.server.passivePorts.inUse > 0 && Date.now() - started < 5_000) await sleep(20);
      const heldMs = Date.now() - started;
      assert.equal(t.server.passivePorts.inUse, 0, 'the listener was closed');
      assert.ok(heldMs < 2_000, `released after ${heldMs} ms`);
      // The late transfer command is told what happened; a new EPSV works.
      assert.equal((await c.send('LIST')).code, 150);
      assert.match((await c.read())?.text ?? '', /^425 .*send PASV or EPSV again/);
      const data = c.dataConnect(await c.epsv());
      assert.equal((await c.send('LIST')).code, 150);
      assert.equal((await c.read())?.code, 226);
      await data.received;
    } finally {
      c.close();
    }
  });

  it('closes a data connection that sends nothing, with no transfer command, within tls.handshakeTimeoutMs', async () => {
    const c = await loggedInFrom(t, U1, '127.0.0.1');
    try {
      const port = await c.epsv();
      const raw = net.connect({ port, host: '127.0.0.1' });
      await new Promise((resolve) => raw.once('connect', resolve));
      const ms = await closedWithin(raw, 5_000);
      assert.notEqual(ms, null, 'the silent data connection was still open after 5 s');
      assert.ok(ms! < 2_000, `closed after ${ms} ms`);
      assert.equal((await c.send('NOOP')).code, 200);
    } finally {
      c.close();
    }
  });

  it('closes a data connection whose TLS handshake finished but whose transfer command never came', async () => {
    const c = await loggedInFrom(t, U1, '127.0.0.1');
    try {
      const data = c.dataConnect(await c.epsv());
      assert.ok(await data.secured, 'the handshake resumed the control session');
      const ms = await closedWithin(data.socket, 5_000);
      assert.notEqual(ms, null, 'the idle data connection was still open after 5 s');
      assert.ok(ms! < 2_000, `closed after ${ms} ms`);
      assert.match((await c.send('RETR x')).text, /^(425|550) /);
      assert.equal((await c.send('NOOP')).code, 200);
    } finally {
      c.close();
    }
  });
});
