import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Timeouts, per-IP caps and TLS versions, all from config values kept small so the tests stay fast.

const USERS = [{ name: 'alice', password: 'alice-limits-pw' }];
const clients: ControlClient[] = [];

async function open(port: number, localAddress?: string): Promise<ControlClient> {
  const c = await ControlClient.connect(port, '127.0.0.1', localAddress);
  clients.push(c);
  return c;
}

async function connect(port: number, localAddress?: string): Promise<ControlClient> {
  const c = await open(port, localAddress);
  assert.equal((await c.read())?.code, 220, 'greeting');
  return c;
}

const LOGIN_TIMEOUT_MS = 1_000;
const IDLE_TIMEOUT_MS = 1_500;
/** Longer than the idle timeout: a failed login is a command that runs past it. */
const SLOW_FAILURE_MS = 2_000;

describe('session limits', () => {
  let loginTimeout: TestServer;
  let idle: TestServer;
  let perIp: TestServer;
  let tls13: TestServer;
  let defaults: TestServer;

  before(async () => {
    const base = { defender: { enabled: false } };
    [loginTimeout, idle, perIp, tls13, defaults] = await Promise.all([
      startTestServer({ users: USERS, config: { ...base, limits: { loginTimeoutMs: LOGIN_TIMEOUT_MS, idleTimeoutMs: 30_000 } } }),
      startTestServer({ users: USERS, config: { ...base, limits: { loginTimeoutMs: 30_000, idleTimeoutMs: IDLE_TIMEOUT_MS, failedLoginDelayMs: SLOW_FAILURE_MS } } }),
      startTestServer({ users: USERS, config: { ...base, limits: { maxSessionsPerIp: 2 } } }),
      startTestServer({ users: USERS, config: { ...base, tls: { minVersion: 'TLSv1.3' } } }),
      startTestServer({ users: USERS, config: base }),
    ]);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([loginTimeout, idle, perIp, tls13, defaults].map((s) => s?.close()));
  });

  describe('timeouts', { concurrency: true }, () => {
    it('closes with 421 when nobody logs in within limits.loginTimeoutMs', async () => {
      const t0 = performance.now();
      const c = await connect(loginTimeout.port);
      await c.authTls();
      assert.equal((await c.send('USER alice')).code, 331);
      const r = await c.read(LOGIN_TIMEOUT_MS + 10_000);
      const waited = performance.now() - t0;
      assert.equal(r?.code, 421);
      assert.match(r.text, /login timeout/i);
      assert.equal(await c.read(), null, 'connection closed');
      assert.ok(waited >= LOGIN_TIMEOUT_MS - 50, `closed after ${waited.toFixed(0)} ms`);
    });

    it('closes with 421 after limits.idleTimeoutMs without a command, counting from the last one', async () => {
      const c = await connect(idle.port);
      assert.equal((await c.login('alice', 'alice-limits-pw')).code, 230);
      // Each command restarts the idle clock.
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS / 3));
        assert.equal((await c.send('NOOP')).code, 200, `NOOP ${i}`);
      }
      const t0 = performance.now();
      const r = await c.read(IDLE_TIMEOUT_MS + 10_000);
      const waited = performance.now() - t0;
      assert.equal(r?.code, 421);
      assert.match(r.text, /idle timeout/i);
      assert.equal(await c.read(), null, 'connection closed');
      assert.ok(waited >= IDLE_TIMEOUT_MS - 100, `closed after ${waited.toFixed(0)} ms`);
    });

    it('does not count a command that runs longer than the idle timeout as idleness', async () => {
      const c = await connect(idle.port);
      await c.authTls();
      assert.equal((await c.send('USER alice')).code, 331);
      const t0 = performance.now();
      const r = await c.send('PASS wrong');
      assert.ok(performance.now() - t0 >= IDLE_TIMEOUT_MS, 'the failed login took longer than the idle timeout');
      assert.equal(r.code, 530, `the login is answered, not cut by the idle timeout: ${r.text}`);
      assert.equal((await c.send('NOOP')).code, 200);
    });
  });

  it('refuses a third session from one address with 421 at connect (limits.maxSessionsPerIp=2)', async () => {
    const a = await connect(perIp.port);
    const b = await connect(perIp.port);
    const c = await open(perIp.port);
    const r = await c.read();
    assert.equal(r?.code, 421);
    assert.equal(await c.read(), null, 'refused connection closed');
    // Another address is not affected.
    const other = await connect(perIp.port, '127.0.0.2');
    assert.equal((await other.send('NOOP')).code, 200);
    // The first two still work; when one leaves, its slot is free again.
    assert.equal((await b.send('NOOP')).code, 200);
    assert.equal((await a.send('QUIT')).code, 221);
    assert.equal(await a.read(), null);
    let greeting: number | undefined;
    for (let i = 0; i < 20 && greeting !== 220; i++) {
      const d = await open(perIp.port);
      greeting = (await d.read())?.code;
      if (greeting !== 220) await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(greeting, 220, 'a slot is free again after QUIT');
  });

  describe('TLS versions', () => {
    for (const [name, opts, expected] of [
      ['a TLS 1.2-only client', { maxVersion: 'TLSv1.2' }, 'TLSv1.2'],
      ['a TLS 1.3 client', { minVersion: 'TLSv1.3' }, 'TLSv1.3'],
    ] as const) {
      it(`logs in with ${name}`, async () => {
        const c = await connect(defaults.port);
        assert.equal((await c.login('alice', 'alice-limits-pw', opts)).code, 230);
        assert.equal((c.socket as tls.TLSSocket).getProtocol(), expected);
        assert.equal((await c.send('PWD')).code, 257);
        c.close();
      });
    }

    it('refuses the handshake of a TLS 1.2-only client when tls.minVersion is TLSv1.3', async () => {
      const c = await connect(tls13.port);
      await assert.rejects(c.authTls({ maxVersion: 'TLSv1.2' }));
      assert.equal(await c.read(), null, 'the server closed the connection');
      const ok = await connect(tls13.port);
      assert.equal((await ok.login('alice', 'alice-limits-pw')).code, 230);
      assert.equal((ok.socket as tls.TLSSocket).getProtocol(), 'TLSv1.3');
    });
  });
});
