import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listEventActions } from '../../src/store/event-repo.js';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../helpers/clients.js';
import { startReceiver, type Receiver } from '../events/receiver.js';
import { errorOf, ok, startAdminServer, type AdminServer, type HttpResult } from './admin-helpers.js';

// The events part of the admin API over real HTTPS: actions (secrets accepted, never returned), rules, deliveries,
// retry and counts; what each role may do; bad input refused with a 4xx that changes nothing. A rule made through the
// API makes a real curl upload reach a real HTTP receiver with a valid signature, and a delivery that failed while the
// receiver was down is listed as failed and delivered by the retry route once it is back.

const ALICE = { name: 'alice', password: 'alice-secret-1' };
const SECRET = 'whsec-api-test-7f3a';
const HEADER_VALUE = 'Bearer header-secret-91b2';

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe('admin API: events', () => {
  let s: AdminServer;
  let rx: Receiver;
  let root: { token: string };
  let op: { token: string };
  let aud: { token: string };
  const as = (who: { token: string }) => ({
    get: (path: string) => s.request('GET', path, { token: who.token }),
    post: (path: string, body?: unknown) => s.request('POST', path, { token: who.token, ...(body === undefined ? {} : { body }) }),
    put: (path: string, body: unknown) => s.request('PUT', path, { token: who.token, body }),
    del: (path: string) => s.request('DELETE', path, { token: who.token }),
  });
  const changeCount = async () => Number((await s.server.store.db.selectFrom('change_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const upload = async (name: string) => {
    const r = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', `${ALICE.name}:${ALICE.password}`, '-T', '-', `ftp://127.0.0.1:${s.port}/${name}`], { input: `id,qty\n1,5\n${name}\n` });
    assert.equal(r.code, 0, `curl upload: ${r.stderr}`);
  };

  before(async () => {
    rx = await startReceiver({ secret: SECRET });
    s = await startAdminServer({ users: [ALICE], config: { events: { pollIntervalMs: 150, retryMinMs: 100, retryMaxMs: 200, maxAttempts: 2 } } });
    root = await s.account('root', 'admin');
    op = await s.account('op', 'operator');
    aud = await s.account('aud', 'auditor');
  });
  after(async () => {
    await s?.close();
    await rx?.close();
  });

  it('creates, shows, replaces and deletes actions; secrets are accepted, kept and never returned or logged', async () => {
    const api = as(root);
    const created = ok(await api.post('/api/v1/events/actions', { name: 'tmp-hook', description: 'scratch', webhook: { url: 'https://example.test/hook', secret: SECRET, headers: { Authorization: HEADER_VALUE } } }), 201);
    assert.deepEqual(created.webhook, { url: 'https://example.test/hook', secretSet: true, headers: ['Authorization'], timeoutMs: null, caSet: false, caFile: null });
    errorOf(await api.post('/api/v1/events/actions', { name: 'tmp-hook', webhook: { url: 'https://example.test/x' } }), 409, 'conflict');
    // An edit of what GET shows, without the secrets, keeps them.
    ok(await api.put('/api/v1/events/actions/tmp-hook', { description: 'moved', webhook: { url: 'https://example.test/hook2', timeoutMs: 2000 } }));
    const action = (await listEventActions(s.server.store.db)).find((a) => a.name === 'tmp-hook')!;
    assert.equal(action.kind, 'webhook');
    assert.equal(action.kind === 'webhook' && action.webhook.secret, SECRET, 'the secret is kept');
    assert.deepEqual(action.kind === 'webhook' && action.webhook.headers, { Authorization: HEADER_VALUE });
    const shown = ok(await api.get('/api/v1/events/actions/tmp-hook'));
    assert.equal(shown.webhook.url, 'https://example.test/hook2');
    assert.equal(shown.description, 'moved');
    const listed = await api.get('/api/v1/events/actions');
    ok(listed);
    // A command action: its environment values are secrets too.
    ok(await api.post('/api/v1/events/actions', { name: 'tmp-cmd', command: { argv: ['/bin/true', '{path}'], env: { TOKEN: 'env-secret-55d1' } } }), 201);
    assert.deepEqual(ok(await api.get('/api/v1/events/actions/tmp-cmd')).command, { argv: ['/bin/true', '{path}'], env: ['TOKEN'], timeoutMs: null });
    const everything = [listed.text, (await api.get('/api/v1/events/actions')).text, (await api.get('/api/v1/events/actions/tmp-cmd')).text].join('\n');
    for (const secret of [SECRET, HEADER_VALUE, 'env-secret-55d1']) assert.ok(!everything.includes(secret), `${secret} is not returned`);

    // Audited as the other admin changes: who, from where, before and after, without secrets.
    const rows = await s.server.store.db.selectFrom('change_log').selectAll().where('entity_kind', '=', 'event_action').where('entity_name', 'in', ['tmp-hook', 'tmp-cmd']).orderBy('id').execute();
    assert.deepEqual(rows.map((r) => `${r.action} ${r.entity_name}`), ['create tmp-hook', 'update tmp-hook', 'create tmp-cmd']);
    for (const r of rows) {
      assert.equal(r.actor, 'admin:root');
      assert.equal(r.ip, '127.0.0.1');
      for (const secret of [SECRET, HEADER_VALUE, 'env-secret-55d1']) assert.ok(!`${r.before}${r.after}`.includes(secret), `change log keeps ${secret} out`);
    }
    assert.equal(JSON.parse(rows[1]!.before!).webhook.url, 'https://example.test/hook');

    ok(await api.del('/api/v1/events/actions/tmp-cmd'));
    ok(await api.del('/api/v1/events/actions/tmp-hook'));
    errorOf(await api.get('/api/v1/events/actions/tmp-hook'), 404, 'not_found');
    errorOf(await api.del('/api/v1/events/actions/tmp-hook'), 404, 'not_found');
  });

  it('refuses bad input with a 4xx and changes nothing', async () => {
    const api = as(root);
    ok(await api.post('/api/v1/events/actions', { name: 'keep', webhook: { url: 'http://127.0.0.1:9/hook' } }), 201);
    ok(await api.put('/api/v1/events/rules/keep-rule', { events: ['mkdir'], actions: ['keep'] }), 201);
    const n = await changeCount();
    const bad: Array<[string, HttpResult, number, string]> = [
      ['unknown event name', await api.put('/api/v1/events/rules/r1', { events: ['uplaod'], actions: ['keep'] }), 400, 'invalid_request'],
      ['unknown action', await api.put('/api/v1/events/rules/r1', { events: ['upload'], actions: ['nope'] }), 400, 'invalid_request'],
      ['unknown user', await api.put('/api/v1/events/rules/r1', { events: ['upload'], actions: ['keep'], users: ['nobody'] }), 400, 'invalid_request'],
      ['relative path glob', await api.put('/api/v1/events/rules/r1', { events: ['upload'], actions: ['keep'], paths: ['inbox/**'] }), 400, 'invalid_request'],
      ['size as a string', await api.put('/api/v1/events/rules/r1', { events: ['upload'], actions: ['keep'], minSize: '5' }), 400, 'invalid_request'],
      ['maxSize below minSize', await api.put('/api/v1/events/rules/r1', { events: ['upload'], actions: ['keep'], minSize: 10, maxSize: 5 }), 400, 'invalid_request'],
      ['bad rule name', await api.put('/api/v1/events/rules/a%20b', { events: ['upload'], actions: ['keep'] }), 400, 'invalid_request'],
      ['bad URL', await api.post('/api/v1/events/actions', { name: 'a1', webhook: { url: 'ftp://example.test/x' } }), 400, 'invalid_request'],
      ['not a URL', await api.post('/api/v1/events/actions', { name: 'a1', webhook: { url: 'example.test' } }), 400, 'invalid_request'],
      ['both kinds', await api.post('/api/v1/events/actions', { name: 'a1', webhook: { url: 'https://x.test/' }, command: { argv: ['/bin/true'] } }), 400, 'invalid_request'],
      ['neither kind', await api.post('/api/v1/events/actions', { name: 'a1' }), 400, 'invalid_request'],
      ['unknown placeholder', await api.post('/api/v1/events/actions', { name: 'a1', command: { argv: ['/bin/echo', '{password}'] } }), 400, 'invalid_request'],
      ['timeout as a string', await api.post('/api/v1/events/actions', { name: 'a1', webhook: { url: 'https://x.test/', timeoutMs: '100' } }), 400, 'invalid_request'],
      ['unknown property', await api.post('/api/v1/events/actions', { name: 'a1', webhook: { url: 'https://x.test/', secrt: 'x' } }), 400, 'invalid_request'],
      ['bad action name', await api.post('/api/v1/events/actions', { name: 'a/1', webhook: { url: 'https://x.test/' } }), 400, 'invalid_request'],
      ['update of a missing action', await api.put('/api/v1/events/actions/missing', { webhook: { url: 'https://x.test/' } }), 404, 'not_found'],
      ['bad URL on update', await api.put('/api/v1/events/actions/keep', { webhook: { url: 'mailto:x@y' } }), 400, 'invalid_request'],
      ['action in use', await api.del('/api/v1/events/actions/keep'), 409, 'conflict'],
      ['bad state filter', await api.get('/api/v1/events/deliveries?state=lost'), 400, 'invalid_request'],
      ['bad limit', await api.get('/api/v1/events/deliveries?limit=ten'), 400, 'invalid_request'],
      ['bad delivery id', await api.get('/api/v1/events/deliveries/abc'), 400, 'invalid_request'],
      ['missing delivery', await api.get('/api/v1/events/deliveries/999999'), 404, 'not_found'],
      ['retry without a target', await api.post('/api/v1/events/deliveries/retry', {}), 400, 'invalid_request'],
      ['retry with an id as a string', await api.post('/api/v1/events/deliveries/retry', { id: '1' }), 400, 'invalid_request'],
      ['retry of a missing delivery', await api.post('/api/v1/events/deliveries/retry', { id: 999999 }), 404, 'not_found'],
    ];
    for (const [what, r, status, code] of bad) {
      assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
      assert.equal(r.json?.error?.code, code, `${what}: ${r.text}`);
    }
    assert.match(bad[0]![1].json.error.message, /events/);
    assert.match(bad[7]![1].json.error.message, /url/);
    assert.equal(await changeCount(), n, 'nothing was recorded');
    errorOf(await api.get('/api/v1/events/rules/r1'), 404, 'not_found');
    errorOf(await api.get('/api/v1/events/actions/a1'), 404, 'not_found');
    assert.equal(ok(await api.get('/api/v1/events/actions/keep')).webhook.url, 'http://127.0.0.1:9/hook');
    ok(await api.del('/api/v1/events/rules/keep-rule'));
    ok(await api.del('/api/v1/events/actions/keep'));
  });

  it('lets admins write, operators read and retry, auditors read', async () => {
    ok(await as(root).post('/api/v1/events/actions', { name: 'roles', webhook: { url: 'http://127.0.0.1:9/' } }), 201);
    const n = await changeCount();
    for (const who of [op, aud]) {
      const api = as(who);
      for (const path of ['/api/v1/events/actions', '/api/v1/events/actions/roles', '/api/v1/events/rules', '/api/v1/events/deliveries?state=failed', '/api/v1/events/counts']) ok(await api.get(path));
      errorOf(await api.post('/api/v1/events/actions', { name: 'x', webhook: { url: 'http://127.0.0.1:9/' } }), 403, 'forbidden');
      errorOf(await api.put('/api/v1/events/actions/roles', { webhook: { url: 'http://127.0.0.1:9/' } }), 403, 'forbidden');
      errorOf(await api.del('/api/v1/events/actions/roles'), 403, 'forbidden');
      errorOf(await api.put('/api/v1/events/rules/x', { events: ['upload'], actions: ['roles'] }), 403, 'forbidden');
      errorOf(await api.del('/api/v1/events/rules/x'), 403, 'forbidden');
    }
    // The operator gets past the role check of retry (there is nothing to retry); the auditor does not.
    errorOf(await as(op).post('/api/v1/events/deliveries/retry', { id: 999999 }), 404, 'not_found');
    errorOf(await as(aud).post('/api/v1/events/deliveries/retry', { id: 999999 }), 403, 'forbidden');
    errorOf(await s.request('GET', '/api/v1/events/rules'), 401, 'unauthorized');
    assert.equal(await changeCount(), n);
    ok(await as(root).del('/api/v1/events/actions/roles'));
  });

  it('a rule made through the API sends a real upload to a webhook, signed', async () => {
    const api = as(root);
    ok(await api.post('/api/v1/events/actions', { name: 'partner-hook', webhook: { url: rx.url, secret: SECRET, headers: { 'X-Api-Token': HEADER_VALUE } } }), 201);
    const rule = ok(await api.put('/api/v1/events/rules/csv-in', { description: 'CSV uploads', events: ['upload'], paths: ['/**/*.csv'], results: ['ok'], actions: ['partner-hook'] }), 201);
    assert.deepEqual({ events: rule.events, enabled: rule.enabled, minSize: rule.minSize }, { events: ['upload'], enabled: true, minSize: null });
    assert.equal(ok(await api.get('/api/v1/events/rules/csv-in')).description, 'CSV uploads');
    assert.ok(ok(await api.get('/api/v1/events/rules')).some((r: any) => r.name === 'csv-in'));

    await upload('report.csv');
    const [got] = await rx.waitFor(1, 20_000, (r) => r.event.path === '/report.csv');
    assert.equal(got!.signatureValid, true, 'signed with the secret given to the API');
    assert.equal(got!.headers['x-api-token'], HEADER_VALUE);
    assert.equal(got!.event.event, 'upload');
    assert.equal(got!.event.user, 'alice');

    // The delivery shows as delivered, with the payload the receiver got.
    const d = await until('the delivery to be marked delivered', async () => {
      const page = ok(await api.get(`/api/v1/events/deliveries?eventId=${encodeURIComponent(String(got!.event.id))}`));
      return page.deliveries.find((x: any) => x.state === 'delivered');
    });
    assert.equal(d.action, 'partner-hook');
    assert.equal(d.rule, 'csv-in');
    const one = ok(await api.get(`/api/v1/events/deliveries/${d.id}`));
    assert.deepEqual(one.payload, got!.event);
    assert.ok(ok(await api.get('/api/v1/events/counts')).delivered >= 1);

    // A rule replaced to be disabled stops deliveries at once (200 for a replace).
    ok(await api.put('/api/v1/events/rules/csv-in', { ...rule, name: undefined, enabled: false, minSize: undefined, maxSize: undefined }), 200);
    const before = rx.received.length;
    await upload('ignored.csv');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(rx.received.length, before, 'a disabled rule sends nothing');
    ok(await api.del('/api/v1/events/rules/csv-in'));
    errorOf(await api.get('/api/v1/events/rules/csv-in'), 404, 'not_found');
  });

  it('lists a delivery that failed while the receiver was down, and the retry route delivers it once it is up', async () => {
    const api = as(root);
    ok(await api.put('/api/v1/events/rules/down-test', { events: ['upload'], paths: ['/down-*.csv'], actions: ['partner-hook'] }), 201);
    await rx.down();
    {
      await upload('down-1.csv');
      const failed = await until('the delivery to fail', async () => {
        const page = ok(await as(op).get('/api/v1/events/deliveries?state=failed'));
        return page.deliveries.find((x: any) => x.rule === 'down-test');
      });
      assert.equal(failed.attempts, 2, 'events.maxAttempts');
      assert.ok(typeof failed.lastError === 'string' && failed.lastError.length > 0);
      assert.ok(ok(await api.get('/api/v1/events/counts')).failed >= 1);
      // A failed delivery stays failed: nothing is sent by itself.
      await rx.up();
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(rx.received.filter((r) => r.event.path === '/down-1.csv').length, 0);

      // The operator retries it: delivered once, with the same event id.
      assert.deepEqual(ok(await as(op).post('/api/v1/events/deliveries/retry', { id: failed.id })), { retried: 1 });
      const [got] = await rx.waitFor(1, 20_000, (r) => r.event.path === '/down-1.csv');
      assert.equal(got!.event.id, failed.eventId);
      assert.equal(got!.signatureValid, true);
      const done = await until('the retried delivery to be delivered', async () => {
        const d = ok(await api.get(`/api/v1/events/deliveries/${failed.id}`));
        return d.state === 'delivered' ? d : undefined;
      });
      assert.equal(done.attempts, 1, 'a fresh attempt count');
      errorOf(await as(op).post('/api/v1/events/deliveries/retry', { id: failed.id }), 409, 'conflict');
      const rec = await s.server.store.db.selectFrom('change_log').selectAll().where('entity_kind', '=', 'event_delivery').orderBy('id', 'desc').executeTakeFirstOrThrow();
      assert.deepEqual({ actor: rec.actor, action: rec.action, name: rec.entity_name, ip: rec.ip }, { actor: 'admin:op', action: 'retry', name: String(failed.id), ip: '127.0.0.1' });

      // By event id, and paging of the list.
      await rx.down();
      await upload('down-2.csv');
      await upload('down-3.csv');
      const byEvent = await until('two failed deliveries', async () => {
        const page = ok(await api.get('/api/v1/events/deliveries?state=failed&limit=1'));
        if (page.deliveries.length !== 1 || page.next === null) return undefined;
        const next = ok(await api.get(`/api/v1/events/deliveries?state=failed&limit=1&before=${page.next}`));
        return next.deliveries.length === 1 ? [page.deliveries[0], next.deliveries[0]] : undefined;
      });
      assert.ok(byEvent[0].id > byEvent[1].id, 'newest first');
      await rx.up();
      assert.deepEqual(ok(await api.post('/api/v1/events/deliveries/retry', { eventId: byEvent[0].eventId })), { retried: 1 });
      await rx.waitFor(1, 20_000, (r) => r.event.id === byEvent[0].eventId);
    }
    ok(await api.del('/api/v1/events/rules/down-test'));
  });

  it('the Events page lists rules and failed deliveries, and its Retry button (with the CSRF token) sends one again', async () => {
    const cookieOf = async (who: { name: string; password: string }) => {
      const r = await s.request('POST', '/login', { raw: new URLSearchParams({ name: who.name, password: who.password, next: '/events' }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(r.status, 302, r.text);
      return String([r.headers['set-cookie']].flat()[0]).split(';')[0]!;
    };
    const viewer = await s.account('page-aud', 'auditor');
    const operator = await s.account('page-op', 'operator');
    ok(await as(root).put('/api/v1/events/rules/page-test', { events: ['upload'], paths: ['/page-*.csv'], actions: ['partner-hook'] }), 201);
    await rx.down();
    await upload('page-1.csv');
    const failed = await until('the delivery to fail', async () => ok(await as(root).get('/api/v1/events/deliveries?state=failed')).deliveries.find((x: any) => x.rule === 'page-test'));
    await rx.up();

    const audCookie = await cookieOf(viewer);
    const audPage = await s.request('GET', '/events', { headers: { cookie: audCookie } });
    assert.equal(audPage.status, 200);
    assert.match(audPage.text, /data-rule="page-test"/);
    assert.match(audPage.text, new RegExp(`data-delivery="${failed.id}"`));
    assert.doesNotMatch(audPage.text, /name="retry"/, 'an auditor gets no Retry button');
    const audCsrf = /name="_csrf" value="([^"]+)"/.exec(audPage.text)![1]!;
    const refused = await s.request('POST', `/events/deliveries/${failed.id}/retry`, { raw: `_csrf=${encodeURIComponent(audCsrf)}`, headers: { cookie: audCookie, 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(refused.status, 403);

    const opCookie = await cookieOf(operator);
    const opPage = await s.request('GET', '/events', { headers: { cookie: opCookie } });
    assert.match(opPage.text, new RegExp(`action="/events/deliveries/${failed.id}/retry"`));
    const noCsrf = await s.request('POST', `/events/deliveries/${failed.id}/retry`, { raw: 'x=1', headers: { cookie: opCookie, 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(noCsrf.status, 403, 'a form without the CSRF token is refused');
    assert.equal(ok(await as(root).get(`/api/v1/events/deliveries/${failed.id}`)).state, 'failed', 'nothing was retried without it');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(opPage.text)![1]!;
    const done = await s.request('POST', `/events/deliveries/${failed.id}/retry`, { raw: `_csrf=${encodeURIComponent(csrf)}`, headers: { cookie: opCookie, 'content-type': 'application/x-www-form-urlencoded', origin: `https://127.0.0.1:${s.adminPort}`, host: `127.0.0.1:${s.adminPort}` } });
    assert.equal(done.status, 302, done.text);
    assert.match(String(done.headers.location), /msg=/);
    await rx.waitFor(1, 20_000, (r) => r.event.id === failed.eventId);
    ok(await as(root).del('/api/v1/events/rules/page-test'));
  });
});
