import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AcmeError } from '../../src/acme/acme-error.js';
import { AcmeManager } from '../../src/acme/acme-manager.js';
import { type ConfigInput, configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { CertStore } from '../../src/tls/cert-store.js';
import { type Pebble, acmeTestSettings, chainVerifies, logCapture, startPebble } from '../helpers/pebble.js';

const fixtureHook = new URL('../fixtures/dns-hook.sh', import.meta.url);

describe('AcmeManager against pebble', () => {
  let pebble: Pebble;
  let work: string;
  const managers: AcmeManager[] = [];

  before(async () => {
    pebble = await startPebble();
    work = await mkdtemp(join(tmpdir(), 'ftpsd-acme-'));
  });

  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  function setup(dirName: string, acme: Partial<ConfigInput['acme']> = {}) {
    const capture = logCapture();
    const config = configSchema.parse({ acme: { ...acmeTestSettings(pebble, join(work, dirName)), ...acme } });
    const certStore = new CertStore();
    const audit: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const manager = new AcmeManager({
      config,
      certStore,
      log: createLogger('debug', capture.stream),
      audit: (event, fields) => audit.push({ event, fields }),
    });
    managers.push(manager);
    return { manager, certStore, capture, audit, config };
  }

  it('issues over HTTP-01, installs the certificate and stores the keys with mode 0600', async (t) => {
    const { manager, certStore, capture, audit } = setup('http');
    const started = Date.now();
    await manager.start();
    const installed = await manager.installed();
    const ms = Date.now() - started;

    assert.equal(certStore.current().leaf.serialNumber, installed.leaf.serialNumber);
    assert.equal(certStore.current().source, 'acme');
    assert.ok(chainVerifies(installed.certPem, pebble.rootPem), 'chain verifies against pebble root');
    assert.equal(installed.leaf.checkHost('ftps.test'), 'ftps.test');
    assert.equal(installed.leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');

    assert.equal((await stat(manager.store.keyFile)).mode & 0o777, 0o600);
    assert.equal((await stat(manager.store.accountKeyFile)).mode & 0o777, 0o600);
    assert.equal(new X509Certificate(await readFile(manager.store.certFile)).serialNumber, installed.leaf.serialNumber);

    assert.equal(capture.events('acme order created').length, 1);
    assert.deepEqual(capture.events('acme challenge answered').map((r) => [r.domain, r.type]), [['ftps.test', 'http-01']]);
    assert.equal(capture.events('acme certificate issued').length, 1);
    assert.equal(capture.events('acme certificate installed')[0]?.component, 'acme');
    assert.deepEqual(audit.map((a) => a.event), ['acme_certificate_issued']);

    // The HTTP-01 listener exists only while an order runs.
    await assert.rejects(tryConnect(pebble.httpPort), /ECONNREFUSED/);
    // The renewal flag is cleared as the order settles, which may be a moment after the certificate was installed.
    for (const deadline = Date.now() + 3_000; manager.status().renewing && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    const status = manager.status();
    assert.equal(status.certificate?.serial, installed.leaf.serialNumber);
    assert.ok(status.renewAt !== null && new Date(status.renewAt).getTime() > Date.now());
    assert.equal(status.renewing, false);
    t.diagnostic(`HTTP-01 issuance ${ms} ms`);
  });

  it('reuses the stored certificate after a restart without a new order', async () => {
    const first = setup('restart');
    await first.manager.start();
    const issued = await first.manager.installed();
    await first.manager.stop();

    // A check interval beyond setTimeout's limit: the 5-year certificate's renewal timer must still be clamped.
    const second = setup('restart', { checkIntervalMs: 100 * 86_400_000 });
    await second.manager.start();
    const reused = await second.manager.installed();
    assert.equal(reused.leaf.serialNumber, issued.leaf.serialNumber);
    assert.equal(second.certStore.current().leaf.serialNumber, issued.leaf.serialNumber);
    assert.equal(second.capture.events('acme order created').length, 0);
    assert.equal(second.capture.events('acme certificate installed')[0]?.from, 'store');
    const nextCheck = new Date(second.manager.status().nextCheckAt ?? 0).getTime() - Date.now();
    assert.ok(nextCheck > 0 && nextCheck <= 2 ** 31 - 1, `timer armed within setTimeout's range (${nextCheck} ms)`);

    // Another process (`ftpsd cert renew`) stores a new certificate; reload() (SIGHUP) installs it.
    const cli = setup('restart');
    const renewed = await cli.manager.renewNow(true);
    assert.equal(renewed.renewed, true);
    assert.equal(await second.manager.reload(), true);
    assert.equal(second.certStore.current().leaf.serialNumber, renewed.certificate.leaf.serialNumber);
    assert.equal(await second.manager.reload(), false, 'nothing new to install');

    // A stored certificate that no longer covers the configured names leads to a new order.
    const third = setup('restart', { domains: ['ftps.test', 'files.ftps.test'] });
    await third.manager.start();
    const reordered = await third.manager.installed();
    assert.notEqual(reordered.leaf.serialNumber, renewed.certificate.leaf.serialNumber);
    assert.equal(reordered.leaf.checkHost('files.ftps.test'), 'files.ftps.test');
    assert.equal(third.capture.events('acme order created').length, 1);
  });

  it('issues over DNS-01 for a name and its wildcard through the hook, which removes its records afterwards', async (t) => {
    const hook = join(work, 'dns-hook.sh');
    await copyFile(fixtureHook, hook);
    await chmod(hook, 0o755);
    const hookLog = join(work, 'dns-hook.log');
    process.env.CHALLTESTSRV_URL = pebble.challtestsrvUrl;
    process.env.DNS_HOOK_LOG = hookLog;
    const { manager, certStore, capture } = setup('dns', { domains: ['ftps.test', '*.ftps.test'], challenges: ['dns-01'], dns01: { hook } });
    const started = Date.now();
    await manager.start();
    const installed = await manager.installed();
    t.diagnostic(`DNS-01 issuance (apex + wildcard) ${Date.now() - started} ms`);

    assert.ok(chainVerifies(installed.certPem, pebble.rootPem));
    assert.equal(certStore.current().leaf.serialNumber, installed.leaf.serialNumber);
    assert.equal(installed.leaf.checkHost('any.ftps.test'), '*.ftps.test');
    const calls = (await readFile(hookLog, 'utf8')).trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' ')).sort();
    assert.deepEqual(calls, ['add _acme-challenge.ftps.test.', 'add _acme-challenge.ftps.test.', 'remove _acme-challenge.ftps.test.', 'remove _acme-challenge.ftps.test.']);
    assert.deepEqual(capture.events('acme challenge answered').map((r) => r.type), ['dns-01', 'dns-01']);
  });

  it('issues over TLS-ALPN-01 with an RSA key when acme.keyType asks for one', async (t) => {
    const { manager, certStore } = setup('alpn', { domains: ['alpn.ftps.test'], challenges: ['tls-alpn-01'], keyType: 'rsa-2048' });
    const started = Date.now();
    await manager.start();
    const installed = await manager.installed();
    t.diagnostic(`TLS-ALPN-01 issuance (RSA 2048) ${Date.now() - started} ms`);
    assert.ok(chainVerifies(installed.certPem, pebble.rootPem));
    assert.equal(certStore.current().leaf.serialNumber, installed.leaf.serialNumber);
    assert.equal(installed.leaf.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(installed.leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    await assert.rejects(tryConnect(pebble.tlsPort), /ECONNREFUSED/);
  });

  it('reports a failing DNS hook with its stderr, still runs the removal, and keeps the current certificate', async () => {
    const calls = join(work, 'failing-hook.calls');
    const hook = join(work, 'failing-hook.sh');
    await writeFile(hook, `#!/bin/sh\necho "$1 $2" >> '${calls}'\nif [ "$1" = add ]; then echo 'zone example is read-only' >&2; exit 3; fi\n`, { mode: 0o755 });
    const { manager, certStore, capture, audit } = setup('dns-fail', { challenges: ['dns-01'], dns01: { hook } });
    const previous = certStore.install({ ...(await selfSigned(work)), source: 'self-signed' });

    const failure = await manager.renewNow(true).then(() => null, (err: unknown) => err);
    assert.ok(failure instanceof AcmeError);
    assert.equal(failure.reason, 'hook_failed');
    assert.match(failure.message, /exited with code 3: zone example is read-only/);
    assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), ['add _acme-challenge.ftps.test.', 'remove _acme-challenge.ftps.test.']);
    assert.equal(certStore.current(), previous);
    const [logged] = capture.events('acme renewal failed');
    assert.equal(logged?.level, 50);
    assert.equal(logged?.reason, 'hook_failed');
    assert.match(String(logged?.detail), /zone example is read-only/);
    assert.deepEqual(audit.map((a) => a.event), ['acme_renewal_failed']);
  });

  it('reports the CA problem detail when the challenge cannot be validated', async () => {
    // The responder listens on a port the CA does not look at, so validation fails at pebble.
    const { manager, capture } = setup('http-fail', { http01: { host: '127.0.0.1', port: 0 } });
    const failure = await manager.renewNow(true).then(() => null, (err: unknown) => err);
    assert.ok(failure instanceof AcmeError);
    assert.equal(failure.reason, 'challenge_failed');
    assert.match(failure.message, /http-01 challenge for ftps\.test failed: .*(refused|connect)/i);
    assert.equal(capture.events('acme renewal failed').length, 1);
    assert.equal(manager.status().consecutiveFailures, 1);
  });

  it('refuses to start when acme.caFile cannot be read', async () => {
    const { manager } = setup('bad-ca', { caFile: join(work, 'no-such-ca.pem') });
    await assert.rejects(manager.start(), (err: unknown) => err instanceof AcmeError && err.reason === 'config' && /no-such-ca\.pem/.test(err.message));
  });

  it('joins a running order instead of starting a second one', async () => {
    const { manager, capture } = setup('join');
    const [a, b] = await Promise.all([manager.renewNow(true), manager.renewNow(true)]);
    assert.equal(a.certificate.leaf.serialNumber, b.certificate.leaf.serialNumber);
    assert.equal(capture.events('acme order created').length, 1);
  });
});

function tryConnect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
}

/** A throw-away certificate to stand in for the one the server had before ACME. */
async function selfSigned(dir: string): Promise<{ keyPem: string; certPem: string }> {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'old.key', '-out', 'old.pem', '-days', '1', '-subj', '/CN=old'], { cwd: dir, stdio: 'ignore' });
  return { keyPem: await readFile(join(dir, 'old.key'), 'utf8'), certPem: await readFile(join(dir, 'old.pem'), 'utf8') };
}
