import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildPayload } from '../../src/events/payload.js';
import {
  claimDeliveries,
  completeDelivery,
  countDeliveries,
  deleteEventAction,
  deleteEventRule,
  enqueueEvent,
  failDelivery,
  getEventPayload,
  listDeliveries,
  loadEventHooks,
  pruneDelivered,
  putEventAction,
  putEventRule,
  retryDeliveries,
} from '../../src/store/event-repo.js';
import { openStore } from '../../src/store/open-store.js';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../helpers/clients.js';
import { ENGINES, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rule, setHooks, webhook } from './hooks.js';
import { startReceiver, type Receiver } from './receiver.js';

// The queue is in the store, on SQLite and on PostgreSQL: a receiver that is down gets everything once it is back; a
// restart loses nothing and sends nothing under another id; a node that died holding deliveries leaves them to
// another once its lease ran out; two nodes sharing the store deliver each event once.

const SECRET = 'durable-secret';

for (const engine of ENGINES) {
  describe(`durable delivery on ${engine}`, () => {
    let pg: TestPostgres | null = null;
    let rx: Receiver;
    let storeConfig: { path?: string; url?: string };
    const events = (node: string) => ({ node, pollIntervalMs: 150, retryMinMs: 150, retryMaxMs: 600, maxAttempts: 1000, leaseMs: 1_500 });
    const servers: TestServer[] = [];
    const start = async (node: string, dir?: string) => {
      const t = await startTestServer({ config: { events: events(node), store: storeConfig, ...(dir === undefined ? {} : {}) } });
      servers.push(t);
      return t;
    };

    before(async () => {
      rx = await startReceiver({ secret: SECRET });
      if (engine === 'postgres') {
        pg = await startPostgres();
        storeConfig = { url: await pg.newDatabase() };
      } else {
        const { mkdtemp } = await import('node:fs/promises');
        const { tmpdir } = await import('node:os');
        storeConfig = { path: join(await mkdtemp(join(tmpdir(), 'ftpsd-events-store-')), 'ftpsd.db') };
      }
    });
    after(async () => {
      for (const t of servers) await t.close().catch(() => undefined);
      await rx?.close();
      await pg?.stop();
    });

    async function upload(t: TestServer, names: string[]): Promise<void> {
      const src = join(t.dir, 'payload.txt');
      await writeFile(src, 'invoice data\n');
      for (const name of names) {
        const r = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', 'alice:alice-secret', '-T', src, `ftp://127.0.0.1:${t.port}/${name}`]);
        assert.equal(r.code, 0, r.stderr);
      }
    }

    it('a receiver down, then back, gets every event; a restart with pending deliveries loses none and changes no id', async () => {
      await rx.down();
      const a = await start('node-a');
      await setHooks(a, [webhook('erp', rx.url, SECRET)], [rule('uploads', ['upload'], ['erp'])]);
      await upload(a, ['a1.txt', 'a2.txt', 'a3.txt']);
      // Written before the 226, still pending: the receiver refuses connections.
      let stored = await listDeliveries(a.server.store.db);
      assert.equal(stored.length, 3);
      assert.ok(stored.every((d) => d.state === 'pending'));
      await new Promise((r) => setTimeout(r, 800));
      assert.ok((await listDeliveries(a.server.store.db)).some((d) => d.attempts >= 1 && d.lastError !== null), 'attempts failed while the receiver was down');

      // Back up while the server runs: the retries deliver.
      await rx.up();
      await rx.waitFor(3);
      rx.received.length = 0;

      // Down again, more uploads, then the server stops with them pending.
      await rx.down();
      await upload(a, ['b1.txt', 'b2.txt', 'b3.txt', 'b4.txt']);
      stored = (await listDeliveries(a.server.store.db, { state: 'pending' }));
      assert.equal(stored.length, 4);
      const storedIds = new Set(stored.map((d) => d.eventId));
      await a.close();
      servers.splice(servers.indexOf(a), 1);

      // A node that crashed after claiming two of them: its lease holds them back until it runs out.
      const side = await openStore({ path: storeConfig.path ?? '', url: storeConfig.url ?? '' });
      const now = Date.now();
      const claimedByDead = await claimDeliveries(side.db, side.engine, { owner: 'crashed-node:1:dead', now: now + 60_000, leaseMs: 1_500 - 60_000, limit: 2 });
      await side.close();
      assert.equal(claimedByDead.length, 2, 'the dead node holds two deliveries');
      await rx.up();
      const b = await start('node-b');
      const got = await rx.waitFor(4, 20_000, (r) => String(r.event.path).startsWith('/b'));
      const ids = got.map((r) => String(r.event.id));
      assert.deepEqual(new Set(ids), storedIds, 'the events arrive under the ids they were stored with');
      const perPath = new Map<string, Set<string>>();
      for (const r of rx.received) {
        const set = perPath.get(String(r.event.path)) ?? new Set<string>();
        set.add(String(r.event.id));
        perPath.set(String(r.event.path), set);
      }
      for (const [path, set] of perPath) assert.equal(set.size, 1, `${path} arrived under one id`);
      for (const c of claimedByDead) {
        const r = got.find((x) => x.event.id === c.eventId)!;
        assert.ok(r.at >= now + 1_400, `a delivery leased by the dead node waited for its lease (${r.at - now} ms)`);
      }
      assert.ok(got.every((r) => r.signatureValid));
      // The receiver has answered; the outcome is recorded a moment later.
      await waitUntil(async () => (await listDeliveries(b.server.store.db)).every((d) => d.state === 'delivered'), 'every delivery recorded as delivered');
    });

    it('the repository: rules and actions, idempotent enqueue, dead letters, retry, counts and pruning', async () => {
      const store = await openStore({ path: storeConfig.path ?? '', url: storeConfig.url ?? '' });
      try {
        const db = store.db;
        const now = Date.now();
        await putEventAction(db, webhook('repo-hook', 'https://example.invalid/x', 's', { headers: { a: 'b' }, timeoutMs: 1000 }), now);
        await putEventRule(db, rule('repo-rule', ['upload', 'upload_check'], ['repo-hook'], { users: ['u'], paths: ['/in/**'], minSize: 1, results: ['ok'] }), now);
        await putEventRule(db, rule('repo-rule', ['download'], ['repo-hook'], { enabled: false }), now + 1);
        const hooks = await loadEventHooks(db);
        assert.deepEqual(hooks.rules['repo-rule'], rule('repo-rule', ['download'], ['repo-hook'], { enabled: false }), 'an upsert replaces the rule');
        assert.equal((hooks.actions['repo-hook'] as { webhook: { headers: Record<string, string> } }).webhook.headers.a, 'b');
        assert.equal(await deleteEventRule(db, 'repo-rule'), true);
        assert.equal(await deleteEventAction(db, 'repo-hook'), true);
        assert.equal(await deleteEventAction(db, 'repo-hook'), false);

        // Due an hour from now: the server running on this store meanwhile leaves them alone.
        const later = now + 3_600_000;
        const payload = buildPayload({ event: 'upload', id: `repo-${engine}`, path: '/x' }, 'n', now - 10_000);
        assert.equal(await enqueueEvent(db, payload, [{ action: 'a1', rule: 'r' }, { action: 'a2', rule: 'r' }, { action: 'a1', rule: 'r2' }], later), 2);
        assert.equal(await enqueueEvent(db, payload, [{ action: 'a1', rule: 'r' }], later), 0, 'the same id twice adds nothing');
        const [d1, d2] = (await claimDeliveries(db, store.engine, { owner: 'me', now: later, leaseMs: 10_000, limit: 10 })).filter((d) => d.eventId === payload.id);
        assert.ok(d1 !== undefined && d2 !== undefined);
        assert.deepEqual(d1.payload, payload);
        assert.equal((await claimDeliveries(db, store.engine, { owner: 'other', now: later, leaseMs: 10_000, limit: 10 })).filter((d) => d.eventId === payload.id).length, 0, 'leased deliveries are not claimed twice');
        assert.equal(await failDelivery(db, d1.id, 'other', { now: later, error: 'x', retryAt: null }), false, 'only the lease owner records an outcome');
        assert.equal(await failDelivery(db, d1.id, 'me', { now: later, error: 'HTTP 500', retryAt: null }), true);
        assert.equal(await completeDelivery(db, d2.id, 'me', later), true);
        const failed = await listDeliveries(db, { state: 'failed' });
        assert.deepEqual(failed.filter((d) => d.eventId === payload.id).map((d) => [d.action, d.attempts, d.lastError]), [['a1', 1, 'HTTP 500']]);
        const counts = await countDeliveries(db);
        assert.ok(counts.failed >= 1 && counts.delivered >= 1);
        assert.equal(await retryDeliveries(db, payload.id, later), 1);
        assert.equal(await retryDeliveries(db, d1.id, later), 0, 'nothing failed any more');
        const again = (await claimDeliveries(db, store.engine, { owner: 'me', now: later + 1, leaseMs: 10_000, limit: 100 })).find((d) => d.id === d1.id);
        assert.equal(again?.attempts, 0, 'a retried dead letter starts with fresh attempts');
        await completeDelivery(db, d1.id, 'me', later + 1);
        await pruneDelivered(db, later + 2);
        assert.equal((await listDeliveries(db, { eventId: payload.id })).length, 0, 'delivered deliveries are pruned');
        assert.equal(await getEventPayload(db, payload.id), null, 'and their event');
      } finally {
        await store.close();
      }
    });

    it('two nodes sharing the store deliver each event exactly once', async () => {
      rx.received.length = 0;
      const n1 = servers[0] ?? (await start('node-b'));
      const n2 = await start('node-c');
      await n2.server.events.refresh();
      const published: string[] = [];
      for (let i = 0; i < 40; i++) {
        const id = `shared-${engine}-${i}`;
        published.push(id);
        await (i % 2 === 0 ? n1 : n2).server.events.publishDurable({ event: 'upload', id, user: 'alice', path: `/shared/${i}.txt`, size: i });
      }
      await rx.waitFor(40, 20_000, (r) => String(r.event.id).startsWith(`shared-${engine}`));
      await new Promise((r) => setTimeout(r, 500));
      const counts = new Map<string, number>();
      for (const r of rx.received) counts.set(String(r.event.id), (counts.get(String(r.event.id)) ?? 0) + 1);
      assert.deepEqual([...counts.values()].filter((c) => c !== 1), [], 'no event went out twice');
      assert.equal(counts.size, 40);
      const delivered = await listDeliveries(n1.server.store.db, { limit: 1000 });
      const byNode = new Set(rx.received.map((r) => String(r.event.node)));
      assert.deepEqual([...byNode].sort(), ['node-b', 'node-c'], 'events carry the node that published them');
      assert.equal(delivered.filter((d) => d.eventId.startsWith('shared-')).length, 40);
    });
  });
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
