import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Every timeout cleans up a client that stops cooperating: one that never logs in, goes idle, never finishes the TLS
// handshake, never connects to its passive port, stalls an upload, or sends a line one byte at a time (slowloris).
// Each is short here, and each check allows for a loaded machine.

const ALICE = { name: 'alice', password: 'alice-secret' };
// Long enough for AUTH TLS and an argon2id check on a loaded machine: the tests that log in must not meet it.
const LOGIN_MS = 3_000;
const IDLE_MS = 1_000;
const HANDSHAKE_MS = 800;
const ACCEPT_MS = 600;
const STALL_MS = 1_000;
/** Scheduling slack on a busy CI machine. */
const SLACK_MS = 1_500;

/** Milliseconds until the server closes `c` (bounded by `maxMs`); the last reply before the close, if any. */
async function timeToClose(c: ControlClient, since: number, maxMs: number): Promise<{ ms: number; last: number | null }> {
  let last: number | null = null;
  const deadline = since + maxMs;
  while (!c.closed && Date.now() < deadline) {
    const r = await c.read(Math.max(1, deadline - Date.now())).catch(() => null);
    if (r !== null) last = r.code;
  }
  assert.ok(c.closed, `still open after ${maxMs} ms`);
  return { ms: Date.now() - since, last };
}

describe('timeouts', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: [ALICE],
      config: {
        limits: { loginTimeoutMs: LOGIN_MS, idleTimeoutMs: IDLE_MS, stalledTransferTimeoutMs: STALL_MS },
        tls: { handshakeTimeoutMs: HANDSHAKE_MS },
        pasv: { acceptTimeoutMs: ACCEPT_MS },
        defender: { threshold: 1_000 },
      },
    });
  });
  after(() => t.close());

  it('login timeout: a client that stays busy but never logs in is closed with 421', async () => {
    const c = await ControlClient.connect(t.port);
    const since = Date.now();
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.authTls()).code, 234);
      // NOOPs keep the idle timer from firing: only the login timer can end this session.
      const keepBusy = (async () => {
        for (let i = 0; i < 40 && !c.closed; i++) {
          c.write('NOOP\r\n');
          await sleep(250);
        }
      })();
      const { ms, last } = await timeToClose(c, since, LOGIN_MS + SLACK_MS);
      await keepBusy;
      assert.equal(last, 421);
      assert.ok(ms >= LOGIN_MS - 50, `closed after ${ms} ms`);
      assert.ok(t.logs().some((l) => l.event === 'login_timeout'));
    } finally {
      c.close();
    }
  });

  it('idle timeout: a logged-in client that sends nothing is closed with 421', async () => {
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      const since = Date.now();
      const { ms, last } = await timeToClose(c, since, IDLE_MS + SLACK_MS);
      assert.equal(last, 421);
      assert.ok(ms >= IDLE_MS - 100, `closed after ${ms} ms`);
      assert.ok(t.logs().some((l) => l.event === 'idle_timeout'));
    } finally {
      c.close();
    }
  });

  it('TLS handshake timeout: AUTH TLS and then no ClientHello is closed within tls.handshakeTimeoutMs', async () => {
    const before = t.logs().filter((l) => l.event === 'tls_failed').length;
    const socket = net.connect({ port: t.port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    const closed = once(socket, 'close');
    await once(socket, 'connect');
    for (let i = 0; i < 200 && !text.includes('220 '); i++) await sleep(10);
    socket.write('AUTH TLS\r\n');
    for (let i = 0; i < 200 && !text.includes('234 '); i++) await sleep(10);
    assert.match(text, /234 /);
    const since = Date.now();
    await Promise.race([closed, sleep(HANDSHAKE_MS + SLACK_MS)]);
    const ms = Date.now() - since;
    assert.ok(socket.destroyed || socket.readableEnded, `still open after ${ms} ms`);
    assert.ok(ms >= HANDSHAKE_MS - 100 && ms <= HANDSHAKE_MS + SLACK_MS, `closed after ${ms} ms`);
    socket.destroy();
    const failed = t.logs().filter((l) => l.event === 'tls_failed');
    assert.equal(failed.length, before + 1);
    assert.ok(t.logs().some((l) => l.event === 'defender_score' && l.kind === 'tlsHandshakeFailure'), 'the failure is scored');
  });

  it('a client that starts TLS but stops mid-handshake is closed too', async () => {
    const socket = net.connect({ port: t.port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    const closed = once(socket, 'close');
    for (let i = 0; i < 200 && !text.includes('220 '); i++) await sleep(10);
    socket.write('AUTH TLS\r\n');
    for (let i = 0; i < 200 && !text.includes('234 '); i++) await sleep(10);
    // The first 5 bytes of a TLS record header for a ClientHello, and then nothing.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    const since = Date.now();
    await Promise.race([closed, sleep(HANDSHAKE_MS + SLACK_MS)]);
    assert.ok(socket.destroyed, `still open after ${Date.now() - since} ms`);
    socket.destroy();
  });

  it('passive accept timeout: a client that never connects to its passive port gets 425', async () => {
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      await c.epsv();
      const since = Date.now();
      c.write('LIST\r\n');
      assert.equal((await c.read())?.code, 150);
      const final = await c.read(ACCEPT_MS + SLACK_MS);
      const ms = Date.now() - since;
      assert.equal(final?.code, 425);
      assert.match(final.text, /did not connect/);
      assert.ok(ms <= ACCEPT_MS + SLACK_MS, `after ${ms} ms`);

      // The listener is gone once its accept time passed: a late connection is refused by the kernel.
      const port = await c.epsv();
      await sleep(ACCEPT_MS + 300);
      const late = net.connect({ port, host: '127.0.0.1' });
      const [outcome] = await Promise.race([once(late, 'error').then((e) => [(e[0] as NodeJS.ErrnoException).code]), once(late, 'connect').then(() => ['connected'])]);
      late.destroy();
      assert.equal(outcome, 'ECONNREFUSED');
      assert.equal((await c.send('NOOP')).code, 200);
    } finally {
      c.close();
    }
  });


  for (const silence of ['nothing', 'half a ClientHello'] as const) {
    it(`data handshake timeout: a data connection that sends ${silence} gets 425 and is closed by the server`, async () => {
      const c = await ControlClient.connect(t.port);
      const raw = new net.Socket();
      try {
        assert.equal((await c.read())?.code, 220);
        assert.equal((await c.login(ALICE.name, ALICE.password)).code, 230);
        const port = await c.epsv();
        raw.on('error', () => undefined);
        const closed = once(raw, 'close');
        await new Promise<void>((r) => raw.connect(port, '127.0.0.1', r));
        // A TLS record header announcing a ClientHello that never comes.
        if (silence === 'half a ClientHello') raw.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        const since = Date.now();
        c.write('STOR handshake-timeout.bin\r\n');
        assert.equal((await c.read())?.code, 150);
        const final = await c.read(HANDSHAKE_MS + SLACK_MS);
        assert.equal(final?.code, 425);
        assert.match(final.text, /handshake timed out/);
        await Promise.race([closed, sleep(SLACK_MS)]);
        assert.ok(raw.destroyed || raw.readableEnded, `data socket still open ${Date.now() - since} ms after STOR`);
        assert.equal((await c.send('NOOP')).code, 200);
        assert.equal(existsSync(join(t.home(ALICE.name), 'handshake-timeout.bin')), false);
      } finally {
        raw.destroy();
        c.close();
      }
    });
  }
  it('stalled transfer: a data connection for STOR that sends nothing gets 426 and leaves no file', async () => {
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      const port = await c.epsv();
      const data = c.dataConnect(port);
      assert.equal((await c.send('STOR stalled.bin')).code, 150);
      assert.equal(await data.secured, true);
      const since = Date.now();
      // Keep the control channel alive the whole time; the idle timer must not be what ends this.
      const final = await c.read(STALL_MS + SLACK_MS + IDLE_MS);
      const ms = Date.now() - since;
      assert.equal(final?.code, 426, final?.text);
      assert.match(final.text, /stall/);
      assert.ok(ms >= STALL_MS - 100 && ms <= STALL_MS + SLACK_MS, `after ${ms} ms`);
      assert.equal(existsSync(join(t.home('alice'), 'stalled.bin')), false);
      assert.equal((await c.send('NOOP')).code, 200, 'the session survives its stalled transfer');
      data.socket.destroy();
    } finally {
      c.close();
    }
  });

  it('slowloris: one byte every 200 ms, never a full line, is closed by the login timeout; logged in, by the idle timeout', async () => {
    for (const loggedIn of [false, true]) {
      const c = await ControlClient.connect(t.port);
      try {
        assert.equal((await c.read())?.code, 220);
        if (loggedIn) assert.equal((await c.login(ALICE.name, ALICE.password)).code, 230);
        const since = Date.now();
        const drip = (async () => {
          const line = 'NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP';
          for (let i = 0; i < line.length && !c.closed; i++) {
            c.write(line[i]!);
            await sleep(200);
          }
        })();
        const limit = loggedIn ? IDLE_MS : Math.min(IDLE_MS, LOGIN_MS);
        const { ms } = await timeToClose(c, since, limit + SLACK_MS);
        await drip;
        assert.ok(ms >= limit - 100, `closed after ${ms} ms`);
      } finally {
        c.close();
      }
    }
  });
});
