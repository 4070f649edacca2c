import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Login over the control channel: TLS policy, right and wrong credentials, timing of failures, failure limit.

const USERS = [{ name: 'alice', password: 'alice-login-pw' }];
const clients: ControlClient[] = [];
/** Parallel logins per timed batch. */
const BATCH = 6;

async function connect(port: number): Promise<ControlClient> {
  const c = await ControlClient.connect(port);
  clients.push(c);
  const greeting = await c.read();
  assert.equal(greeting?.code, 220, 'greeting');
  return c;
}

async function tlsClient(port: number): Promise<ControlClient> {
  const c = await connect(port);
  assert.equal((await c.authTls()).code, 234);
  return c;
}


describe('login', () => {
  let srv: TestServer;
  let plainLogin: TestServer;
  let timing: TestServer;

  before(async () => {
    // No fixed failure delay here, so the timing test sees argon2's cost alone.
    srv = await startTestServer({ users: USERS, config: { defender: { enabled: false }, limits: { failedLoginDelayMs: 0, maxFailedLoginsPerSession: 3 } } });
    plainLogin = await startTestServer({ users: USERS, config: { defender: { enabled: false }, tls: { requireForLogin: false } } });
    timing = await startTestServer({
      users: USERS,
      // Many wrong passwords for alice on purpose: the per-account throttle would otherwise answer them with 421.
      config: { defender: { enabled: false }, limits: { failedLoginDelayMs: 0, maxFailedLoginsPerSession: 20, passwordHashConcurrency: 1, accountFailuresBeforeThrottle: 1_000 } },
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    await srv?.close();
    await plainLogin?.close();
    await timing?.close();
  });

  it('greets with 220 and the configured banner, not a version', async () => {
    const c = await ControlClient.connect(srv.port);
    clients.push(c);
    const g = await c.read();
    assert.equal(g?.code, 220);
    assert.match(g.text, /ftpsd ready/);
    assert.doesNotMatch(g.text, /\d+\.\d+\.\d+/);
  });

  it('refuses USER and PASS before AUTH TLS when tls.requireForLogin is on', async () => {
    const c = await connect(srv.port);
    const u = await c.send('USER alice');
    assert.equal(u.code, 530);
    assert.match(u.text, /AUTH TLS/);
    const p = await c.send('PASS alice-login-pw');
    assert.equal(p.code, 530, `PASS in plaintext: ${p.text}`);
    assert.match(p.text, /AUTH TLS/);
    // Still not logged in.
    assert.equal((await c.send('PWD')).code, 530);
  });

  it('allows a plaintext login when tls.requireForLogin is off', async () => {
    const c = await connect(plainLogin.port);
    assert.equal((await c.send('USER alice')).code, 331);
    assert.equal((await c.send('PASS alice-login-pw')).code, 230);
    assert.equal((await c.send('PWD')).code, 257);
  });

  it('logs in after AUTH TLS with 230', async () => {
    const c = await connect(srv.port);
    const r = await c.login('alice', 'alice-login-pw');
    assert.equal(r.code, 230);
    assert.equal((await c.send('PWD')).text, '257 "/" is the current directory');
  });

  it('answers 530 to a wrong password and to an unknown user, and a retry with the right password works', async () => {
    const c = await tlsClient(srv.port);
    assert.equal((await c.send('USER alice')).code, 331);
    assert.equal((await c.send('PASS wrong')).code, 530);
    assert.equal((await c.send('PWD')).code, 530, 'a failed login leaves the session logged out');
    assert.equal((await c.send('USER nobody')).code, 331, 'USER does not reveal whether the user exists');
    assert.equal((await c.send('PASS wrong')).code, 530);
    assert.equal((await c.send('USER alice')).code, 331);
    assert.equal((await c.send('PASS alice-login-pw')).code, 230);
  });

  it('takes about as long for an unknown user as for a wrong password', async (t) => {
    // Batches of logins in parallel against one argon2 slot (timing server): a batch costs BATCH verifications in a
    // row, far more than the scheduling noise of a busy machine. An unknown user answered without a verification
    // would make its batch cost one round trip.
    const sessions = await Promise.all(Array.from({ length: BATCH }, () => tlsClient(timing.port)));
    const batch = async (user: (i: number) => string): Promise<number> => {
      await Promise.all(sessions.map(async (c, i) => assert.equal((await c.send(`USER ${user(i)}`)).code, 331)));
      const t0 = performance.now();
      await Promise.all(sessions.map(async (c) => assert.equal((await c.send('PASS not-the-password')).code, 530)));
      return performance.now() - t0;
    };
    // Warm up: the first unknown user creates the dummy hash.
    await batch((i) => `ghost${i}`);
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let round = 0; round < 3; round++) {
      wrong.push(await batch(() => 'alice'));
      unknown.push(await batch((i) => `ghost-${round}-${i}`));
    }
    // The fastest batch is the cost itself; load on the machine only ever adds to it.
    const fastUnknown = Math.min(...unknown);
    const fastWrong = Math.min(...wrong);
    const ratio = fastUnknown / fastWrong;
    const all = `${unknown.map((x) => x.toFixed(0)).join(',')} / ${wrong.map((x) => x.toFixed(0)).join(',')}`;
    t.diagnostic(`batches of ${BATCH}, unknown / wrong ms: ${all}`);
    assert.ok(ratio > 0.5 && ratio < 2, `${BATCH} unknown users ${fastUnknown.toFixed(1)} ms vs ${BATCH} wrong passwords ${fastWrong.toFixed(1)} ms (ratio ${ratio.toFixed(2)}); all: ${all}`);
  });

  it('closes the session with 421 after limits.maxFailedLoginsPerSession failures', async () => {
    const c = await tlsClient(srv.port);
    for (let i = 1; i <= 2; i++) {
      await c.send('USER alice');
      assert.equal((await c.send('PASS bad')).code, 530, `attempt ${i}`);
    }
    await c.send('USER alice');
    assert.equal((await c.send('PASS bad')).code, 530);
    const bye = await c.read();
    assert.equal(bye?.code, 421);
    assert.match(bye.text, /failed logins/i);
    assert.equal(await c.read(), null, 'connection closed');
  });
});
