import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listDeliveries } from '../../src/store/event-repo.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rule, setHooks, webhook } from './hooks.js';
import { startReceiver, type Receiver } from './receiver.js';

// A receiver that takes seconds to answer holds neither the 226 (the upload waits only for its event to be in the
// store) nor other sessions. Measured: time from the end of the upload's data to its 226, without a matching rule
// and with one whose receiver sleeps 3 s; and another session's NOOP round trips meanwhile.

const RECEIVER_DELAY_MS = 3_000;

describe('a slow receiver', () => {
  let t: TestServer;
  let rx: Receiver;

  before(async () => {
    rx = await startReceiver({ secret: 'slow' });
    rx.respond = () => ({ status: 200, delayMs: RECEIVER_DELAY_MS });
    t = await startTestServer({ config: { events: { pollIntervalMs: 200, concurrency: 2, webhookTimeoutMs: 10_000 } } });
    await setHooks(t, [webhook('slow', rx.url, 'slow')], [rule('uploads', ['upload'], ['slow'], { paths: ['/hooked/**'] })]);
  });
  after(async () => {
    await t?.close();
    await rx?.close();
  });

  /** Milliseconds from the end of each upload's data to its 226. */
  async function uploads(c: ControlClient, dir: string, n: number): Promise<number[]> {
    const out: number[] = [];
    const data = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < n; i++) {
      const port = await c.epsv();
      assert.equal((await c.send(`STOR ${dir}/f${i}.bin`)).code, 150);
      await c.dataConnect(port).upload(data);
      const sent = performance.now();
      assert.equal((await c.read())?.code, 226);
      out.push(performance.now() - sent);
    }
    return out;
  }

  it('never delays the 226 or another session beyond the enqueue', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    assert.equal((await c.send('MKD plain')).code, 257);
    assert.equal((await c.send('MKD hooked')).code, 257);
    await uploads(c, 'plain', 2); // warm-up
    const baseline = await uploads(c, 'plain', 8);
    const hooked = await uploads(c, 'hooked', 8);

    // The deliveries are still running (two at a time, 3 s each): another session is answered at once.
    const other = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      assert.equal((await other.send('NOOP')).code, 200);
      rtts.push(performance.now() - s);
    }
    const pending = (await listDeliveries(t.server.store.db, { state: 'pending' })).length;
    const stats = (xs: number[]) => ({ median: Math.round(xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]! * 10) / 10, max: Math.round(Math.max(...xs) * 10) / 10 });
    const figures = { baseline226: stats(baseline), hooked226: stats(hooked), otherSessionNoop: stats(rtts), pendingWhileMeasured: pending };
    console.log(`# slow receiver (${RECEIVER_DELAY_MS} ms per event): ${JSON.stringify(figures)}`);

    assert.ok(pending >= 4, 'deliveries were still waiting on the slow receiver while this was measured');
    assert.ok(figures.hooked226.max < 1_000, `226 never waits for the receiver (max ${figures.hooked226.max} ms)`);
    assert.ok(figures.hooked226.median < figures.baseline226.median + 250, 'the enqueue adds no receiver time (a loaded machine adds noise of its own)');
    assert.ok(figures.otherSessionNoop.max < 500, `other sessions are answered at once (max ${figures.otherSessionNoop.max} ms)`);
    c.close();
    other.close();
  });
});
