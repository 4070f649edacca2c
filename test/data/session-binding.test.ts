import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { ControlClient } from '../helpers/control-client.js';
import { passiveRange, startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// The data layer's promise (DESIGN.md "Binding data connections to their control session"): a passive port accepts
// only a TLS connection that resumes *this* control session's TLS session and comes from the control peer's address.
// Everything else is refused with 425 and logged with a stable reason. The one exception is a sibling: another live
// control session of the same user from the same address (rclone's parallel connections share one TLS session cache).

const USER = 'alice';
const PASSWORD = 'alice-secret';
/** Another partner on the same address: its session is foreign to alice's. */
const OTHER = { name: 'mallory', password: 'mallory-secret' };
const CONTENT = Buffer.from('the file behind the passive port\n');
const VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
type TlsVersion = (typeof VERSIONS)[number];

/** The defender would ban 127.0.0.1 after a few deliberate refusals; its own tests cover it. */
const QUIET_DEFENDER = { defender: { threshold: 10_000 } };
/** Ended sessions' tickets are forgotten at once here, so that their refusal can be tested. */
const STRICT = { ...QUIET_DEFENDER, tls: { siblingTicketRetentionMs: 0, siblingLoginWaitMs: 1_500 } };

function pinned(version: TlsVersion): tls.ConnectionOptions {
  return { minVersion: version, maxVersion: version };
}

async function loggedInWith(t: TestServer, options: tls.ConnectionOptions, user = { name: USER, password: PASSWORD }): Promise<ControlClient> {
  const c = await ControlClient.connect(t.port);
  assert.equal((await c.read())?.code, 220);
  const r = await c.login(user.name, user.password, options);
  assert.equal(r.code, 230, r.text);
  return c;
}

function loggedIn(t: TestServer, version: TlsVersion): Promise<ControlClient> {
  return loggedInWith(t, pinned(version));
}

/** Log lines with `event`, waited for (bounded): the refusal is logged when the handshake ends, maybe after the reply. */
async function logEvents(t: TestServer, event: string, match: (l: Record<string, unknown>) => boolean = () => true, min = 1): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const found = t.logs().filter((l) => l.event === event && l.audit !== true && match(l));
    if (found.length >= min || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** RETR over a data connection made with `opts`; returns the final reply and what the client received. */
async function retrWith(c: ControlClient, name: string, opts: Parameters<ControlClient['dataConnect']>[1]) {
  const port = await c.epsv();
  const data = c.dataConnect(port, opts);
  const first = await c.send(`RETR ${name}`);
  assert.equal(first.code, 150, first.text);
  const final = await c.read();
  const received = await data.received;
  return { final, received, secured: await data.secured };
}

describe('data connection bound to its control session', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: [{ name: USER, password: PASSWORD }, OTHER], config: STRICT });
    await writeHomeFile(t, USER, 'file.txt', CONTENT);
  });
  after(() => t.close());

  for (const version of VERSIONS) {
    test(`${version}: a data connection resuming the control session is accepted`, async () => {
      const c = await loggedIn(t, version);
      try {
        const { final, received } = await retrWith(c, 'file.txt', { tlsOptions: pinned(version) });
        assert.equal(final?.code, 226, final?.text);
        assert.deepEqual(received, CONTENT);
      } finally {
        c.close();
      }
    });

    test(`${version}: a data connection offering no TLS session is refused with 425 (no_ticket_offered)`, async () => {
      const c = await loggedIn(t, version);
      try {
        const { final, received } = await retrWith(c, 'file.txt', { session: null, tlsOptions: pinned(version) });
        assert.equal(final?.code, 425);
        assert.match(final?.text ?? '', /not resumed/);
        assert.equal(received.length, 0, 'no file byte may reach an unbound connection');
        const lines = await logEvents(t, 'data_connection_refused', (l) => l.reason === 'no_ticket_offered' && l.sid !== undefined);
        assert.ok(lines.length >= 1, 'a data_connection_refused line with reason no_ticket_offered');
        // The session survives: the next, properly resumed, transfer works.
        const again = await retrWith(c, 'file.txt', { tlsOptions: pinned(version) });
        assert.equal(again.final?.code, 226, again.final?.text);
        assert.deepEqual(again.received, CONTENT);
      } finally {
        c.close();
      }
    });

    test(`${version}: another user's control session's TLS session is refused with 425 (foreign_session)`, async () => {
      const a = await loggedInWith(t, pinned(version), OTHER);
      const b = await loggedIn(t, version);
      try {
        const before = (await logEvents(t, 'data_connection_refused', (l) => l.reason === 'foreign_session', 0)).length;
        const stolen = a.tlsSession;
        assert.ok(stolen !== undefined, "A's control connection holds a TLS session");
        // The attacker (A) races to B's passive port with A's own, perfectly valid, session.
        const { final, received } = await retrWith(b, 'file.txt', { session: stolen, tlsOptions: pinned(version) });
        assert.equal(final?.code, 425);
        assert.match(final?.text ?? '', /not resumed/);
        assert.equal(received.length, 0, 'no file byte may reach the other session');
        const lines = await logEvents(t, 'data_connection_refused', (l) => l.reason === 'foreign_session', before + 1);
        assert.equal(lines.length, before + 1, 'a data_connection_refused line with reason foreign_session');
      } finally {
        a.close();
        b.close();
      }
    });
  }

  for (const version of VERSIONS) {
    test(`${version}: 25 transfers in one session, each resuming with the newest ticket the client holds`, async () => {
      // TLS 1.3 clients use a ticket once (curl, JSSE): they keep working only if every data connection gives a new one.
      // TLS 1.2 tickets may be reused, and Node's client keeps its first one: the same ticket must keep working.
      const fresh13 = version === 'TLSv1.3';
      const c = await loggedIn(t, version);
      try {
        let ticket = c.tlsSession;
        const seen = new Set<string>();
        for (let i = 0; i < 25; i++) {
          assert.ok(ticket !== undefined);
          if (fresh13) assert.ok(!seen.has(ticket.toString('hex')), 'never the same ticket twice');
          seen.add(ticket.toString('hex'));
          const port = await c.epsv();
          const data = c.dataConnect(port, { session: ticket, tlsOptions: pinned(version) });
          let resumed = false;
          data.socket.once('secureConnect', () => (resumed = data.socket.isSessionReused()));
          const fresh = new Promise<Buffer | undefined>((resolve) => {
            data.socket.on('session', (s: Buffer) => resolve(s));
            data.socket.once('close', () => resolve(undefined));
          });
          assert.equal((await c.send('RETR file.txt')).code, 150);
          const final = await c.read();
          assert.equal(final?.code, 226, `transfer ${i + 1}: ${final?.text}`);
          assert.deepEqual(await data.received, CONTENT);
          assert.equal(resumed, true, `transfer ${i + 1} resumed`);
          const next = await fresh;
          if (fresh13) assert.ok(next !== undefined, `data connection ${i + 1} sent a new session ticket`);
          ticket = next ?? ticket;
        }
      } finally {
        c.close();
      }
    });

    test(`${version}: a sibling's ticket (same user, same address, logged in) is accepted and logged; once the sibling ended, refused`, async () => {
      const a = await loggedIn(t, version);
      const b = await loggedIn(t, version);
      try {
        const own = await retrWith(b, 'file.txt', { session: a.tlsSession, tlsOptions: pinned(version) });
        assert.equal(own.final?.code, 226, own.final?.text);
        assert.deepEqual(own.received, CONTENT);
        const sibling = await logEvents(t, 'data_session_sibling', () => true);
        assert.ok(sibling.length >= 1, 'a data_session_sibling line names the sibling session');
        const audits = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && typeof l.resumedFromSession === 'string');
        assert.ok(audits.length >= 1, 'the transfer record names the session whose ticket it resumed');

        const stale = a.tlsSession;
        a.close();
        await new Promise((r) => setTimeout(r, 200));
        const after = await retrWith(b, 'file.txt', { session: stale, tlsOptions: pinned(version) });
        assert.equal(after.final?.code, 425, 'the ticket of an ended session no longer binds');
        assert.equal(after.received.length, 0);
      } finally {
        a.close();
        b.close();
      }
    });

    test(`${version}: a sibling still logging in is waited for: accepted once it logs in as the same user, refused as another`, async () => {
      for (const [who, expected] of [[{ name: USER, password: PASSWORD }, 226], [OTHER, 425]] as const) {
        const b = await loggedIn(t, version);
        // A connection of the same address that has its TLS session but has not sent PASS yet (rclone opens several).
        const pending = await ControlClient.connect(t.port);
        try {
          assert.equal((await pending.read())?.code, 220);
          assert.equal((await pending.authTls(pinned(version))).code, 234);
          // A round trip, so that a TLS 1.3 ticket (sent after the handshake) has arrived.
          assert.equal((await pending.send('PBSZ 0')).code, 200);
          assert.ok(pending.tlsSession !== undefined);
          const port = await b.epsv();
          const data = b.dataConnect(port, { session: pending.tlsSession, tlsOptions: pinned(version) });
          assert.equal((await b.send('RETR file.txt')).code, 150);
          await new Promise((r) => setTimeout(r, 300));
          assert.equal((await pending.send(`USER ${who.name}`)).code, 331);
          assert.equal((await pending.send(`PASS ${who.password}`)).code, 230);
          const final = await b.read();
          assert.equal(final?.code, expected, `${who.name}: ${final?.text}`);
          const received = await data.received;
          assert.equal(received.length, expected === 226 ? CONTENT.length : 0);
        } finally {
          pending.close();
          b.close();
        }
      }
    });
  }

  test("an ended sibling's ticket keeps working for tls.siblingTicketRetentionMs (rclone's cache outlives its connections)", async () => {
    const kept = await startTestServer({ config: QUIET_DEFENDER });
    try {
      await writeHomeFile(kept, USER, 'file.txt', CONTENT);
      const a = await loggedIn(kept, 'TLSv1.3');
      const b = await loggedIn(kept, 'TLSv1.3');
      const ticket = a.tlsSession;
      a.close();
      await new Promise((r) => setTimeout(r, 200));
      const r = await retrWith(b, 'file.txt', { session: ticket, tlsOptions: pinned('TLSv1.3') });
      assert.equal(r.final?.code, 226, r.final?.text);
      b.close();
    } finally {
      await kept.close();
    }
  });

  test('a refused TLS session from the control address is not scored by the defender', async () => {
    const strict = await startTestServer({ config: { defender: { threshold: 3 } } });
    try {
      await writeHomeFile(strict, USER, 'file.txt', CONTENT);
      const c = await loggedIn(strict, 'TLSv1.3');
      for (let i = 0; i < 6; i++) {
        const r = await retrWith(c, 'file.txt', { session: null, tlsOptions: pinned('TLSv1.3') });
        assert.equal(r.final?.code, 425);
      }
      const fine = await retrWith(c, 'file.txt', { tlsOptions: pinned('TLSv1.3') });
      assert.equal(fine.final?.code, 226, 'the address was not banned for its own client\'s refused connections');
      assert.equal(strict.logs().filter((l) => l.event === 'ban').length, 0);
    } finally {
      await strict.close();
    }
  });

  test('TLSv1.2 without tickets (session-ID resumption, as curl does): own session accepted, another refused', async () => {
    // SSL_OP_NO_TICKET: the client resumes by session ID alone, so the server must keep the session itself.
    const noTickets: tls.ConnectionOptions = { ...pinned('TLSv1.2'), secureOptions: constants.SSL_OP_NO_TICKET };
    const a = await loggedInWith(t, noTickets, OTHER);
    const b = await loggedInWith(t, noTickets);
    try {
      const own = await retrWith(b, 'file.txt', { tlsOptions: noTickets });
      assert.equal(own.final?.code, 226, own.final?.text);
      assert.deepEqual(own.received, CONTENT);
      const foreign = await retrWith(b, 'file.txt', { session: a.tlsSession, tlsOptions: noTickets });
      assert.equal(foreign.final?.code, 425);
      assert.equal(foreign.received.length, 0);
    } finally {
      a.close();
      b.close();
    }
  });

  test('a data connection from another address is refused with 425 "another address" (wrong_address)', async () => {
    const c = await loggedIn(t, 'TLSv1.3');
    try {
      const { final, received } = await retrWith(c, 'file.txt', { localAddress: '127.0.0.2' });
      assert.equal(final?.code, 425);
      assert.match(final?.text ?? '', /another address/);
      assert.equal(received.length, 0);
      const lines = await logEvents(t, 'data_connection_refused', (l) => l.reason === 'wrong_address');
      assert.equal(lines[0]?.peer, '127.0.0.2');
      assert.equal(lines[0]?.expected, '127.0.0.1');
    } finally {
      c.close();
    }
  });

  test('PASV and EPSV before PROT P are refused with 521 under the default policy', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      assert.equal((await c.authTls()).code, 234);
      assert.equal((await c.send(`USER ${USER}`)).code, 331);
      assert.equal((await c.send(`PASS ${PASSWORD}`)).code, 230);
      assert.equal((await c.send('PASV')).code, 521);
      assert.equal((await c.send('EPSV')).code, 521);
      assert.equal((await c.send('PBSZ 0')).code, 200);
      assert.equal((await c.send('PROT P')).code, 200);
      assert.equal((await c.send('PASV')).code, 227);
    } finally {
      c.close();
    }
  });

  test('a new PASV/EPSV replaces the previous listener: the old port refuses connections', async () => {
    const c = await loggedIn(t, 'TLSv1.3');
    try {
      const pasv = await c.send('PASV');
      const m = /\(127,0,0,1,(\d+),(\d+)\)/.exec(pasv.text);
      assert.ok(pasv.code === 227 && m !== null, pasv.text);
      const old = Number(m[1]) * 256 + Number(m[2]);
      // Ports are drawn at random from the range; the old one may be drawn again. Bounded retries.
      let fresh = await c.epsv();
      for (let i = 0; i < 10 && fresh === old; i++) fresh = await c.epsv();
      assert.notEqual(fresh, old);
      const refused = await new Promise<string>((resolve) => {
        const s = net.connect({ port: old, host: '127.0.0.1' });
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
      assert.equal(refused, 'ECONNREFUSED');
      const data = c.dataConnect(fresh);
      assert.equal((await c.send('RETR file.txt')).code, 150);
      assert.equal((await c.read())?.code, 226);
      assert.deepEqual(await data.received, CONTENT);
    } finally {
      c.close();
    }
  });
});

describe('passive listener accept timeout', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { ...QUIET_DEFENDER, pasv: { acceptTimeoutMs: 300 } } });
    await writeHomeFile(t, USER, 'file.txt', CONTENT);
  });
  after(() => t.close());

  test('a data connection never made: 425 after pasv.acceptTimeoutMs, whether RETR comes before or after it', async () => {
    const c = await loggedIn(t, 'TLSv1.3');
    try {
      await c.epsv();
      const started = Date.now();
      assert.equal((await c.send('RETR file.txt')).code, 150);
      const r = await c.read();
      assert.equal(r?.code, 425);
      assert.match(r?.text ?? '', /did not connect/);
      assert.ok(Date.now() - started < 5_000, 'refused after the accept timeout, not the handshake timeout');

      await c.epsv();
      await new Promise((res) => setTimeout(res, 500));
      assert.equal((await c.send('RETR file.txt')).code, 150);
      assert.equal((await c.read())?.code, 425);
    } finally {
      c.close();
    }
  });
});

describe('passive port range', () => {
  let t: TestServer;
  const range = passiveRange(1);
  before(async () => {
    // Both sessions are one user from one address: the per-user and per-address caps (a quarter of the range, so 1
    // here) are raised, so that the range itself runs out.
    t = await startTestServer({ config: { ...QUIET_DEFENDER, pasv: { ...range, maxListenersPerUser: 2, maxListenersPerAddress: 2 } } });
  });
  after(() => t.close());

  test('an exhausted passive range answers 425 and logs pasv_exhausted', async () => {
    const holder = await loggedIn(t, 'TLSv1.3');
    const other = await loggedIn(t, 'TLSv1.3');
    try {
      // Held by a session that never connects to it (the listener lives until pasv.idleListenerTimeoutMs, 10 s).
      const held = await holder.epsv();
      assert.equal(held, range.minPort);
      const r = await other.send('EPSV');
      assert.equal(r.code, 425, r.text);
      const lines = await logEvents(t, 'pasv_exhausted');
      assert.ok(lines.length >= 1, 'a pasv_exhausted log line');
      assert.equal(lines[0]?.range, `${range.minPort}-${range.maxPort}`);
      // The holder's session ends: its port goes back to the range.
      holder.close();
      let next = await other.send('EPSV');
      for (let i = 0; i < 50 && next.code !== 229; i++) {
        await new Promise((res) => setTimeout(res, 20));
        next = await other.send('EPSV');
      }
      assert.equal(next.code, 229, next.text);
    } finally {
      holder.close();
      other.close();
    }
  });
});
