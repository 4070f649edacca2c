import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventsFromChanges } from '../../src/events/change-events.js';
import { commandArgv, commandEnv } from '../../src/events/command-action.js';
import { backoffMs } from '../../src/events/delivery-worker.js';
import { matchesGlob } from '../../src/events/path-glob.js';
import { buildPayload } from '../../src/events/payload.js';
import { routesFor, ruleMatches } from '../../src/events/rules.js';
import { sign, verify } from '../../src/events/signature.js';
import { rule, webhook } from './hooks.js';

// The pure parts of events: globs, rule filters, the payload's fixed shape, the signature, backoff, and the events
// read from the store's change log.

describe('rules and payloads', () => {
  it('globs: * within a segment, ** across', () => {
    assert.ok(matchesGlob('/inbox/**', '/inbox/a.csv'));
    assert.ok(matchesGlob('/inbox/**', '/inbox/x/y/z.csv'));
    assert.ok(!matchesGlob('/inbox/**', '/inboxes/a'));
    assert.ok(matchesGlob('/inbox/*.csv', '/inbox/a.csv'));
    assert.ok(!matchesGlob('/inbox/*.csv', '/inbox/sub/a.csv'));
    assert.ok(matchesGlob('/**/*.csv', '/a.csv'));
    assert.ok(matchesGlob('/**/*.csv', '/x/y/a.csv'));
    assert.ok(matchesGlob('/in?ox/a', '/inbox/a'));
    assert.ok(!matchesGlob('/a.b', '/aXb'), 'dots are literal');
  });

  it('a rule filters on event, user, group, path, size and result', () => {
    const p = buildPayload({ event: 'upload', user: 'acme', groups: ['partners'], path: '/inbox/a.csv', size: 500 }, 'n1');
    const r = rule('r', ['upload'], ['a'], { users: ['acme'], groups: ['partners'], paths: ['/inbox/**'], minSize: 100, maxSize: 1000, results: ['ok'] });
    assert.ok(ruleMatches(r, 'upload', p));
    assert.ok(!ruleMatches(r, 'download', p));
    assert.ok(!ruleMatches({ ...r, enabled: false }, 'upload', p));
    assert.ok(!ruleMatches(r, 'upload', { ...p, user: 'globex' }));
    assert.ok(!ruleMatches(r, 'upload', { ...p, groups: ['staff'] }));
    assert.ok(!ruleMatches(r, 'upload', { ...p, path: '/outbox/a.csv' }));
    assert.ok(!ruleMatches(r, 'upload', { ...p, size: 50 }));
    assert.ok(!ruleMatches(r, 'upload', { ...p, size: 5000 }));
    assert.ok(!ruleMatches(r, 'upload', { ...p, size: null }), 'a size filter needs a size');
    assert.ok(!ruleMatches(r, 'upload', { ...p, result: 'aborted' }));
    assert.ok(ruleMatches(rule('rename', ['rename'], ['a'], { paths: ['/archive/**'] }), 'rename', { ...p, path: '/inbox/a', toPath: '/archive/a' }), 'a rename matches on either path');
    const routes = routesFor({ actions: { a: webhook('a', 'http://x', ''), b: webhook('b', 'http://x', '') }, rules: { r1: rule('r1', ['upload'], ['a', 'b']), r2: rule('r2', ['upload'], ['b']) } }, 'upload', p);
    assert.deepEqual(routes, [{ action: 'a', rule: 'r1' }, { action: 'b', rule: 'r1' }], 'one delivery per action');
  });

  it('every v1 payload has every key', () => {
    const p = buildPayload({ event: 'login' }, 'n1', Date.UTC(2030, 0, 1));
    assert.deepEqual(Object.keys(p), ['v', 'id', 'event', 'time', 'node', 'session', 'user', 'groups', 'ip', 'client', 'path', 'toPath', 'storagePath', 'size', 'bytes', 'sha256', 'tlsVersion', 'tlsCipher', 'resumed', 'result', 'code', 'reason', 'details']);
    assert.equal(p.v, 1);
    assert.equal(p.time, '2030-01-01T00:00:00.000Z');
    assert.match(p.id, /^[0-9a-f-]{36}$/);
  });

  it('signatures verify with the secret, within the tolerance, for the exact text', () => {
    const now = Date.now();
    const t = Math.floor(now / 1000);
    const h = sign('s3cret', t, '{"a":1}');
    assert.match(h, /^v1=[0-9a-f]{64}$/);
    assert.ok(verify('s3cret', h, t, '{"a":1}', 300, now));
    assert.ok(!verify('s3cret', h, t, '{"a":2}', 300, now));
    assert.ok(!verify('other', h, t, '{"a":1}', 300, now));
    assert.ok(!verify('s3cret', h, t, '{"a":1}', 300, now + 301_000), 'an old message is refused');
  });

  it('command argv and environment come from the payload', () => {
    const p = buildPayload({ event: 'upload', user: 'acme', groups: ['a', 'b'], path: '/in/x y.csv', size: 3, storagePath: '/srv/x y.csv' }, 'n1');
    const spec = { argv: ['/bin/import', '{path}', '--size={size}', '{storagePath}', '{unknown}', '{file}'], env: { QUEUE: 'q' }, timeoutMs: null };
    assert.deepEqual(commandArgv(spec, p, { file: '/tmp/staged' }), ['/bin/import', '/in/x y.csv', '--size=3', '/srv/x y.csv', '{unknown}', '/tmp/staged']);
    const env = commandEnv(spec, p);
    assert.equal(env.FTPSD_STORAGE_PATH, '/srv/x y.csv');
    assert.equal(env.FTPSD_GROUPS, 'a,b');
    assert.equal(env.FTPSD_SHA256, '');
    assert.equal(env.QUEUE, 'q');
    assert.equal(env.FTPSD_EVENT_ID, p.id);
  });

  it('backoff doubles from retryMinMs up to retryMaxMs', () => {
    for (let i = 0; i < 20; i++) {
      const b1 = backoffMs(1, 1000, 60_000);
      assert.ok(b1 >= 800 && b1 <= 1200);
      const b3 = backoffMs(3, 1000, 60_000);
      assert.ok(b3 >= 3200 && b3 <= 4800);
      assert.ok(backoffMs(30, 1000, 60_000) <= 72_000);
    }
  });

  it('the change log gives user_disabled, user_expired and retention_delete with the change as id', () => {
    const events = eventsFromChanges([
      { id: 7, at: 1, actor: 'cli:root', action: 'disable', entityKind: 'user', entityName: 'acme', before: { disabled: false, groups: ['p'] }, after: { disabled: true, groups: ['p'] } },
      { id: 8, at: 2, actor: 'system:lifecycle', action: 'expire', entityKind: 'user', entityName: 'globex', after: { expiresAt: '2030-01-01T00:00:00.000Z', groups: [] } },
      { id: 9, at: 3, actor: 'system:retention', action: 'retention_delete', entityKind: 'file', entityName: '/srv/out/a', before: { folder: 'out', size: 12, ageDays: 8, since: 'modified' } },
      { id: 10, at: 4, actor: 'cli:root', action: 'update', entityKind: 'user', entityName: 'ops', before: { disabled: false }, after: { disabled: false } },
    ]);
    assert.deepEqual(events.map((e) => [e.event, e.id, e.user ?? e.storagePath]), [
      ['user_disabled', 'change-7', 'acme'],
      ['user_expired', 'change-8', 'globex'],
      ['retention_delete', 'change-9', '/srv/out/a'],
    ]);
  });
});
