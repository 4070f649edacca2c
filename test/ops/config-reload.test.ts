import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validate } from '../../src/config/load.js';
import { applyConfigChanges, changedKeys } from '../../src/ops/config-reload.js';

test('changed keys are leaf paths; arrays compare as a whole', () => {
  const a = validate({}, 'a');
  const b = validate({ limits: { maxSessions: 7 }, tls: { selfSignedNames: ['ftp.example.com'] }, listen: { port: 21 } }, 'b');
  assert.deepEqual(changedKeys(a, b), ['limits.maxSessions', 'listen.port', 'tls.selfSignedNames']);
  assert.deepEqual(changedKeys(a, validate({}, 'c')), []);
});

test('runtime settings are applied in place, the others kept and reported', () => {
  const running = validate({}, 'running');
  const limits = running.limits;
  const next = validate(
    { limits: { idleTimeoutMs: 5_000, passwordHashConcurrency: 4 }, pasv: { externalAddress: '203.0.113.7', minPort: 40000 }, metrics: { enabled: true }, log: { level: 'debug' } },
    'next',
  );
  const changes = applyConfigChanges(running, next);
  assert.deepEqual(changes.applied.sort(), ['limits.idleTimeoutMs', 'log.level', 'pasv.externalAddress']);
  assert.deepEqual(changes.needsRestart.sort(), ['limits.passwordHashConcurrency', 'metrics.enabled', 'pasv.minPort']);
  assert.equal(running.limits, limits, 'the same objects are updated, so every holder sees the new value');
  assert.equal(running.limits.idleTimeoutMs, 5_000);
  assert.equal(running.pasv.externalAddress, '203.0.113.7');
  assert.equal(running.pasv.minPort, 50_000, 'bound at start: kept');
  assert.equal(running.metrics.enabled, false);
  assert.equal(running.limits.passwordHashConcurrency, 2);
});
