import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// Session caps (total, per address, per user) answer 421/530 and log; bandwidth limits hold a transfer to its rate.

const ALICE = { name: 'alice', password: 'alice-secret' };
const BOB = { name: 'bob', password: 'bob-secret' };

async function open(t: TestServer, localAddress: string): Promise<{ c: ControlClient; greeting: number }> {
  const c = await ControlClient.connect(t.port, '127.0.0.1', localAddress);
  const r = await c.read();
  return { c, greeting: r?.code ?? 0 };
}

async function waitClosed(c: ControlClient, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!c.closed && Date.now() < deadline) await sleep(20);
  return c.closed;
}

describe('session limits', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: [ALICE, BOB],
      config: { limits: { maxSessions: 4, maxSessionsPerIp: 2, maxLoginsPerUser: 2 }, defender: { threshold: 1_000 } },
    });
  });
  after(() => t.close());

  it('refuses a third session from one address with 421 and accepts other addresses; a freed slot is reusable', async () => {
    const a1 = await open(t, '127.0.0.11');
    const a2 = await open(t, '127.0.0.11');
    try {
      assert.equal(a1.greeting, 220);
      assert.equal(a2.greeting, 220);
      const a3 = await open(t, '127.0.0.11');
      assert.equal(a3.greeting, 421);
      assert.ok(await waitClosed(a3.c), 'the refused connection is closed');
      assert.ok(t.logs().some((l) => l.event === 'connection_refused' && l.reason === 'max_sessions_per_ip' && l.ip === '127.0.0.11'));
      const b = await open(t, '127.0.0.12');
      assert.equal(b.greeting, 220);
      b.c.close();

      a1.c.close();
      await sleep(200);
      const again = await open(t, '127.0.0.11');
      assert.equal(again.greeting, 220, 'the closed session freed its slot');
      again.c.close();
    } finally {
      a1.c.close();
      a2.c.close();
    }
    await sleep(200);
  });

  it('refuses a session past limits.maxSessions with 421', async () => {
    const held = [await open(t, '127.0.0.13'), await open(t, '127.0.0.14'), await open(t, '127.0.0.15'), await open(t, '127.0.0.16')];
    try {
      assert.deepEqual(held.map((h) => h.greeting), [220, 220, 220, 220]);
      const extra = await open(t, '127.0.0.17');
      assert.equal(extra.greeting, 421);
      assert.ok(await waitClosed(extra.c));
      assert.ok(t.logs().some((l) => l.event === 'connection_refused' && l.reason === 'max_sessions' && l.ip === '127.0.0.17'));
    } finally {
      for (const h of held) h.c.close();
    }
    await sleep(200);
  });

  it('refuses a login past limits.maxLoginsPerUser with 530 until one logs out', async () => {
    const s = [await open(t, '127.0.0.21'), await open(t, '127.0.0.22'), await open(t, '127.0.0.23')];
    try {
      assert.equal((await s[0]!.c.login(ALICE.name, ALICE.password)).code, 230);
      assert.equal((await s[1]!.c.login(ALICE.name, ALICE.password)).code, 230);
      const third = await s[2]!.c.login(ALICE.name, ALICE.password);
      assert.equal(third.code, 530);
      assert.match(third.text, /Too many sessions for this user/);
      assert.ok(t.logs().some((l) => l.audit === true && l.event === 'login_failed' && l.reason === 'too_many_sessions'));
      // Another user is not affected.
      const bob = await open(t, '127.0.0.24');
      assert.equal((await bob.c.login(BOB.name, BOB.password)).code, 230);
      bob.c.close();

      assert.equal((await s[0]!.c.send('QUIT')).code, 221);
      await waitClosed(s[0]!.c);
      await sleep(100);
      assert.equal((await s[2]!.c.send(`USER ${ALICE.name}`)).code, 331);
      assert.equal((await s[2]!.c.send(`PASS ${ALICE.password}`)).code, 230, 'the slot freed by QUIT is reusable');
    } finally {
      for (const x of s) x.c.close();
    }
  });
});

describe('bandwidth limits', () => {
  const RATE = 1024 * 1024;
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: [ALICE], config: { limits: { downloadBytesPerSecond: RATE, uploadBytesPerSecond: RATE } } });
  });
  after(() => t.close());

  it('a 2 MiB download at 1 MiB/s takes about 2 s', async () => {
    const content = randomBytes(2 * RATE);
    await writeHomeFile(t, 'alice', 'big.bin', content);
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      const port = await c.epsv();
      const data = c.dataConnect(port);
      const started = Date.now();
      assert.equal((await c.send('RETR big.bin')).code, 150);
      const received = await data.received;
      const final = await c.read();
      const ms = Date.now() - started;
      assert.equal(final?.code, 226);
      assert.ok(received.equals(content));
      assert.ok(ms >= 1_800, `took ${ms} ms`);
      assert.ok(ms < 10_000, `took ${ms} ms`);
    } finally {
      c.close();
    }
  });

  it('a 2 MiB upload at 1 MiB/s takes about 2 s', async () => {
    const content = randomBytes(2 * RATE);
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      const port = await c.epsv();
      const data = c.dataConnect(port);
      const started = Date.now();
      assert.equal((await c.send('STOR up.bin')).code, 150);
      await data.upload(content);
      const final = await c.read();
      const ms = Date.now() - started;
      assert.equal(final?.code, 226, final?.text);
      assert.ok((await readFile(join(t.home('alice'), 'up.bin'))).equals(content));
      assert.ok(ms >= 1_800, `took ${ms} ms`);
    } finally {
      c.close();
    }
  });
});

describe('per-user bandwidth limits (users file)', () => {
  const RATE = 1024 * 1024;
  const SLOW = { name: 'slow-partner', password: 'slow-secret', downloadBytesPerSecond: RATE };
  const FREE = { name: 'trusted', password: 'trusted-secret', uploadBytesPerSecond: 0 };
  let t: TestServer;
  before(async () => {
    // Server-wide: unlimited downloads, 1 MiB/s uploads. One user is held to 1 MiB/s down, one is exempt from the upload limit.
    t = await startTestServer({ users: [SLOW, FREE], config: { limits: { uploadBytesPerSecond: RATE } } });
  });
  after(() => t.close());

  async function timed(user: { name: string; password: string }, verb: 'RETR' | 'STOR', content: Buffer): Promise<number> {
    const c = await ControlClient.loggedIn(t.port, user.name, user.password);
    try {
      const port = await c.epsv();
      const data = c.dataConnect(port);
      const started = Date.now();
      assert.equal((await c.send(`${verb} f.bin`)).code, 150);
      if (verb === 'STOR') await data.upload(content);
      else assert.ok((await data.received).equals(content));
      assert.equal((await c.read())?.code, 226);
      return Date.now() - started;
    } finally {
      c.close();
    }
  }

  it("a user's own download limit applies where the server has none", async () => {
    const content = randomBytes(2 * RATE);
    await writeHomeFile(t, SLOW.name, 'f.bin', content);
    const ms = await timed(SLOW, 'RETR', content);
    assert.ok(ms >= 1_800, `took ${ms} ms`);
  });

  it('a user limit of 0 lifts the server-wide upload limit for that user only', async () => {
    const content = randomBytes(2 * RATE);
    const free = await timed(FREE, 'STOR', content);
    const limited = await timed(SLOW, 'STOR', content);
    assert.ok(limited >= 1_800, `the server-wide limit held the other user to ${limited} ms`);
    assert.ok(free < limited / 2, `exempt user took ${free} ms, limited one ${limited} ms`);
    assert.ok((await readFile(join(t.home(FREE.name), 'f.bin'))).equals(content));
  });
});
