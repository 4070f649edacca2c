import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AcmeError } from '../../src/acme/acme-error.js';
import { AcmeManager } from '../../src/acme/acme-manager.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { CertStore, type InstalledCertificate } from '../../src/tls/cert-store.js';
import { type Pebble, acmeTestSettings, chainVerifies, logCapture, startPebble } from '../helpers/pebble.js';

/** Pebble issues certificates this short-lived; renewal is due when half of the lifetime is left. */
const VALIDITY_SECONDS = 10;
const EVENT_TIMEOUT_MS = 15_000;

describe('AcmeManager renewal', () => {
  let pebble: Pebble;
  let work: string;
  let manager: AcmeManager;
  const certStore = new CertStore();
  const capture = logCapture();
  // The manager's timers are unref'ed (a server keeps the process alive with its sockets); this test has none.
  const keepAlive = setInterval(() => {}, 1_000);

  before(async () => {
    pebble = await startPebble({ certificateValidityPeriodSeconds: VALIDITY_SECONDS });
    work = await mkdtemp(join(tmpdir(), 'ftpsd-acme-renew-'));
    const config = configSchema.parse({
      acme: {
        ...acmeTestSettings(pebble, join(work, 'acme')),
        // The fraction rule must win: 1e-6 days is under 0.1 s.
        renewBeforeDays: 1e-6,
        renewBeforeFraction: 0.5,
        retryMinMs: 300,
        retryMaxMs: 1_000,
      },
    });
    manager = new AcmeManager({ config, certStore, log: createLogger('debug', capture.stream) });
  });

  after(async () => {
    clearInterval(keepAlive);
    await manager?.stop();
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('renews by itself when half of the lifetime is left and installs the new certificate', async (t) => {
    await manager.start();
    const first = await manager.installed();
    const renewAt = new Date(manager.status().renewAt ?? 0).getTime();
    const lifetime = new Date(first.leaf.validTo).getTime() - new Date(first.leaf.validFrom).getTime();
    assert.ok(Math.abs(new Date(first.leaf.validTo).getTime() - lifetime / 2 - renewAt) < 1_000, 'renewal due at half the lifetime');

    const [second] = (await once(manager, 'installed', { signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) })) as [InstalledCertificate];
    t.diagnostic(`renewal installed ${Date.now() - renewAt} ms after it was due (order ${String(capture.events('acme certificate issued').at(-1)?.ms)} ms)`);
    assert.notEqual(second.leaf.serialNumber, first.leaf.serialNumber);
    assert.equal(certStore.current().leaf.serialNumber, second.leaf.serialNumber);
    assert.ok(chainVerifies(second.certPem, pebble.rootPem));
    assert.equal(capture.events('acme order created').length, 2);
    assert.equal(capture.events('acme certificate issued').at(-1)?.trigger, 'scheduled');
  });

  it('keeps the certificate, logs the error and retries with backoff when the CA is down', async (t) => {
    const current = certStore.current();
    await pebble.stop();
    const dueAt = new Date(manager.status().renewAt ?? 0).getTime();

    const [error] = (await once(manager, 'renewalFailed', { signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) })) as [AcmeError];
    const failedAfterDueMs = Date.now() - dueAt;
    assert.ok(error instanceof AcmeError);
    assert.equal(error.reason, 'ca_unreachable');
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal(certStore.current(), current, 'the old certificate stays installed');

    const [logged] = capture.events('acme renewal failed');
    assert.equal(logged?.level, 50);
    assert.equal(logged?.component, 'acme');
    assert.match(String(logged?.detail), /ECONNREFUSED/);
    assert.equal(typeof logged?.msLeft, 'number');
    assert.ok((logged?.msLeft as number) > 0 && (logged?.msLeft as number) <= (VALIDITY_SECONDS * 1000) / 2);
    assert.ok((logged?.retryInMs as number) >= 300 && (logged?.retryInMs as number) <= 1_000);

    // The retry comes by itself, after the backoff.
    await once(manager, 'renewalFailed', { signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) });
    assert.equal(manager.status().consecutiveFailures, 2);
    assert.equal(certStore.current(), current);
    t.diagnostic(`renewal failure reported ${failedAfterDueMs} ms after it was due; retry after ${String(logged?.retryInMs)} ms`);
  });
});
