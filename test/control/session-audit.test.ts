import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// What the log holds after logins, good and bad: the audit events an operator relies on, and never a password.

const GOOD = 'Corr3ct-Horse-Battery';
const WRONG = 'Wr0ng-Guess-Zebra';
const PLAIN = 'Pla1ntext-Attempt-Quokka';

type Line = Record<string, unknown>;

describe('control session logs', () => {
  let srv: TestServer;
  const clients: ControlClient[] = [];

  before(async () => {
    srv = await startTestServer({ users: [{ name: 'alice', password: GOOD }], config: { defender: { enabled: false } } });
    const connect = async () => {
      const c = await ControlClient.connect(srv.port);
      clients.push(c);
      assert.equal((await c.read())?.code, 220);
      return c;
    };
    // A password sent before AUTH TLS (refused), a wrong one, an unknown user, then a good login and QUIT.
    const plain = await connect();
    await plain.send('USER alice');
    await plain.send(`PASS ${PLAIN}`);
    await plain.send('QUIT');
    const c = await connect();
    await c.authTls();
    await c.send('USER alice');
    assert.equal((await c.send(`PASS ${WRONG}`)).code, 530);
    await c.send('USER mallory');
    assert.equal((await c.send(`PASS ${WRONG}`)).code, 530);
    await c.send('USER alice');
    assert.equal((await c.send(`PASS ${GOOD}`)).code, 230);
    assert.equal((await c.send('QUIT')).code, 221);
    assert.equal(await c.read(), null);
    // The disconnect is recorded when the server sees the close; wait for it, bounded.
    for (let i = 0; i < 50 && audits('disconnect').length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  });

  after(async () => {
    for (const c of clients) c.close();
    await srv?.close();
  });

  const audits = (event: string): Line[] => srv.logs().filter((l) => l.audit === true && l.event === event);

  it('never writes a password, right or wrong, anywhere in the log', () => {
    const raw = srv.logs().map((l) => JSON.stringify(l)).join('\n');
    assert.ok(raw.length > 0);
    for (const secret of [GOOD, WRONG, PLAIN]) assert.ok(!raw.includes(secret), `log contains ${secret}`);
    // The commands themselves are logged (at debug), with PASS redacted.
    assert.ok(raw.includes('PASS [redacted]'), 'PASS commands are logged redacted');
  });

  it('records connect, tls, login, login_failed and disconnect with user and address', () => {
    const connects = audits('connect');
    assert.ok(connects.length >= 2);
    for (const e of connects) assert.equal(e.ip, '127.0.0.1');

    const [tlsEvent] = audits('tls');
    assert.ok(tlsEvent, 'tls event');
    assert.equal(tlsEvent.ip, '127.0.0.1');
    assert.match(String(tlsEvent.protocol), /^TLSv1\.[23]$/);
    assert.match(String(tlsEvent.cipher), /^(TLS_)?[A-Z0-9_-]+$/);

    const logins = audits('login');
    assert.equal(logins.length, 1);
    assert.equal(logins[0]!.user, 'alice');
    assert.equal(logins[0]!.ip, '127.0.0.1');
    assert.match(String(logins[0]!.protocol), /^TLSv1\.[23]$/);

    const failed = audits('login_failed');
    assert.deepEqual(failed.map((e) => [e.user, e.ip, e.reason]), [
      ['alice', '127.0.0.1', 'bad_password'],
      ['mallory', '127.0.0.1', 'unknown_user'],
    ]);

    const disconnects = audits('disconnect');
    assert.equal(disconnects.length, 2);
    for (const e of disconnects) assert.equal(e.ip, '127.0.0.1');
    // One session id ties the events of a session together.
    const sid = logins[0]!.sid;
    assert.ok(typeof sid === 'string' && sid !== '');
    for (const event of ['connect', 'tls', 'login_failed', 'disconnect']) {
      assert.ok(audits(event).some((e) => e.sid === sid), `${event} of the logged-in session`);
    }
  });
});
