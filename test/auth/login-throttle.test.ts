import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// A login storm spread over many addresses (each under the ban threshold) against a partner's user name and against
// made-up names: the partner, logging in from an address it used before, must keep logging in, quickly and never
// with 421, while the storm's password checks queue behind it or are refused.

const PARTNER = { name: 'partner', password: 'partner-secret' };
const STORM_ADDRESSES = 90;
const TRIES = 3;
const PARTNER_LOGINS = 5;
/** Each of the partner's PASS must be answered 230 within this while the storm runs. */
const PASS_BOUND_MS = 1_500;

/** One storm address: a connection with TRIES wrong passwords; the reply codes it got. */
async function stormer(port: number, ip: string, user: string): Promise<number[]> {
  const codes: number[] = [];
  const c = await ControlClient.connect(port, '127.0.0.1', ip);
  try {
    if ((await c.read(20_000))?.code !== 220) return [0];
    if ((await c.authTls()).code !== 234) return [0];
    for (let i = 0; i < TRIES && !c.closed; i++) {
      await c.send(`USER ${user}`);
      c.write('PASS wrong-password\r\n');
      const r = await c.read(30_000).catch(() => null);
      codes.push(r?.code ?? 0);
    }
  } catch {
    codes.push(-1);
  } finally {
    c.close();
  }
  return codes;
}

describe('a distributed login storm', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: [PARTNER],
      config: {
        limits: {
          maxSessions: 1_000,
          passwordHashConcurrency: 1,
          passwordHashQueueMax: 20,
          passwordHashReservedQueue: 5,
          accountFailuresBeforeThrottle: 10,
          failedLoginDelayMs: 50,
        },
        defender: { threshold: 10 },
      },
    });
  });
  after(() => t.close());

  it('lets a partner from an address it used before log in every time, without 421, within a bound', async () => {
    // The partner's history: one login from its usual address.
    (await ControlClient.loggedIn(t.port, PARTNER.name, PARTNER.password)).close();

    const storm = Array.from({ length: STORM_ADDRESSES }, (_, i) => {
      const ip = `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
      // Two thirds on the partner's name, a third on names that do not exist.
      return stormer(t.port, ip, i % 3 === 2 ? `nobody${i}` : PARTNER.name);
    });
    const partnerCodes: number[] = [];
    const partnerMs: number[] = [];
    const c = await ControlClient.connect(t.port);
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.authTls()).code, 234);
      for (let i = 0; i < PARTNER_LOGINS; i++) {
        await new Promise((r) => setTimeout(r, 150));
        assert.equal((await c.send(`USER ${PARTNER.name}`)).code, 331);
        const started = Date.now();
        c.write(`PASS ${PARTNER.password}\r\n`);
        const r = await c.read(30_000);
        partnerMs.push(Date.now() - started);
        partnerCodes.push(r?.code ?? 0);
        if (r?.code === 230) assert.equal((await c.send('REIN')).code, 220);
      }
    } finally {
      c.close();
    }
    const stormCodes = (await Promise.all(storm)).flat();
    const count = (code: number) => stormCodes.filter((x) => x === code).length;
    console.log(`# storm: ${stormCodes.length} attempts, ${count(530)} x 530, ${count(421)} x 421; partner PASS ${partnerMs.join(', ')} ms -> ${partnerCodes.join(', ')}`);
    assert.deepEqual(partnerCodes, Array(PARTNER_LOGINS).fill(230), 'every partner login succeeded');
    assert.ok(Math.max(...partnerMs) < PASS_BOUND_MS, `partner PASS took up to ${Math.max(...partnerMs)} ms`);
    assert.ok(count(421) > 0, 'the storm did overflow what it was allowed (the test has teeth)');
    assert.ok(t.logs().some((l) => l.reason === 'account_throttled'), 'the partner name was throttled for other addresses');
  });
});
