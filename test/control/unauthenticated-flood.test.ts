import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Connections that never log in, from a few addresses each under the per-address cap, must not lock everyone else
// out: they get their own smaller cap, less time to log in under pressure, give way to newcomers from other
// addresses, and the addresses that keep doing it are banned.

const PARTNER = { name: 'partner', password: 'partner-secret' };
const FLOODERS = ['127.0.0.21', '127.0.0.22', '127.0.0.23', '127.0.0.24'];
const PER_FLOODER = 10;
const FLOOD_MS = 4_000;
/** The partner connects, greets, does AUTH TLS and logs in within this. */
const LOGIN_BOUND_MS = 3_000;

/** Keeps PER_FLOODER silent connections open from `ip` (reconnecting when one is closed) until `stop()`. */
async function flood(port: number, ip: string, stop: () => boolean, stats: { opened: number; refused: number }): Promise<void> {
  const open = new Set<ControlClient>();
  while (!stop()) {
    for (const c of open) if (c.closed) open.delete(c);
    while (open.size < PER_FLOODER && !stop()) {
      const c = await ControlClient.connect(port, '127.0.0.1', ip).catch(() => null);
      if (c === null) break;
      const greeting = await c.read(2_000).catch(() => null);
      if (greeting?.code === 220) {
        stats.opened++;
        open.add(c);
      } else {
        stats.refused++;
        c.close();
        break;
      }
    }
    await sleep(50);
  }
  for (const c of open) c.close();
}

describe('a flood of connections that never log in', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: [PARTNER],
      config: {
        limits: { maxSessions: 40, maxSessionsPerIp: PER_FLOODER, maxUnauthenticatedSessions: 20, loginTimeoutMs: 60_000, loginTimeoutUnderPressureMs: 1_500 },
        defender: { threshold: 3 },
      },
    });
  });
  after(() => t.close());

  it('leaves room for a partner from another address to log in, and bans the flooding addresses', async () => {
    let stop = false;
    const stats = { opened: 0, refused: 0 };
    const flooders = FLOODERS.map((ip) => flood(t.port, ip, () => stop, stats));
    try {
      // Let the flood fill what it can.
      await sleep(1_000);
      const outcomes: string[] = [];
      const loginMs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        try {
          const c = await ControlClient.connect(t.port, '127.0.0.1', '127.0.0.30');
          const greeting = await c.read();
          if (greeting?.code !== 220) {
            outcomes.push(`greeting ${greeting?.code} ${greeting?.text}`);
            c.close();
            continue;
          }
          const r = await c.login(PARTNER.name, PARTNER.password);
          const ms = Date.now() - started;
          loginMs.push(ms);
          outcomes.push(r.code === 230 && ms < LOGIN_BOUND_MS ? 'ok' : `${r.code} after ${ms} ms`);
          assert.equal((await c.send('NOOP')).code, 200);
          c.close();
        } catch (err) {
          outcomes.push(`error ${(err as Error).message}`);
        }
        await sleep(700);
      }
      console.log(`# partner logins during the flood: ${loginMs.join(', ')} ms`);
      assert.deepEqual(outcomes, ['ok', 'ok', 'ok'], 'the partner logged in each time within the bound');
      await sleep(Math.max(0, FLOOD_MS - 3_000));
    } finally {
      stop = true;
      await Promise.all(flooders);
    }
    const banned = FLOODERS.filter((ip) => t.server.defender?.isBanned(ip));
    console.log(`# flood: ${stats.opened} connections opened, ${stats.refused} refused; banned ${banned.join(', ')}`);
    assert.ok(banned.length >= 1, 'a flooding address was banned');
    assert.equal(t.server.defender?.isBanned('127.0.0.30'), false, 'the partner was not banned');
    assert.ok(t.logs().some((l) => l.event === 'session_displaced' || l.event === 'login_timeout'));
  });
});
