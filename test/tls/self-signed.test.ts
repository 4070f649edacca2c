import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../src/log/logger.js';
import {
  SELF_SIGNED_CERT_FILE,
  SELF_SIGNED_KEY_FILE,
  SelfSignedCertificateError,
  createSelfSignedCertificate,
  ensureSelfSignedCertificate,
} from '../../src/tls/self-signed.js';

const execFileAsync = promisify(execFile);
const NAMES = ['localhost', '127.0.0.1', '::1'];
const DAY_MS = 86_400_000;

let root: string;
let dirCount = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ftpsd-self-signed-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

function freshDir(): string {
  dirCount += 1;
  return join(root, `case-${dirCount}`, 'certs');
}

/** A real pino logger writing JSON lines into an array. */
function capturingLogger() {
  const events: Array<Record<string, unknown>> = [];
  const log = createLogger('debug', { write: (line: string) => void events.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, events };
}

function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

describe('ensureSelfSignedCertificate', () => {
  test('generates an ECDSA P-256 certificate that is self-signed, matches its key and covers every name', async () => {
    const dir = freshDir();
    const now = new Date();
    const { log, events } = capturingLogger();
    const pair = await ensureSelfSignedCertificate({ dir, names: NAMES, log, now });

    assert.equal(pair.source, 'self-signed');
    const leaf = new X509Certificate(pair.certPem);
    const key = createPrivateKey(pair.keyPem);
    assert.equal(leaf.checkPrivateKey(key), true);
    assert.equal(leaf.verify(leaf.publicKey), true);
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8

    assert.equal(leaf.checkHost('localhost'), 'localhost');
    assert.equal(leaf.checkHost('example.com'), undefined);
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(leaf.checkIP('::1'), '::1');
    assert.equal(leaf.checkIP('127.0.0.2'), undefined);
    assert.equal(leaf.subject, 'CN=localhost\nO=ftpsd self-signed');
    assert.equal(leaf.issuer, leaf.subject);
    assert.equal(leaf.ca, false);

    // Positive 16-byte serial.
    assert.match(leaf.serialNumber, /^[0-7][0-9A-F]{31}$/);
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    assert.ok(Math.abs(notBefore - (now.getTime() - 3_600_000)) < 2_000, leaf.validFrom);
    assert.ok(Math.abs(notAfter - (now.getTime() + 825 * DAY_MS)) < 2_000, leaf.validTo);

    // What is on disk is what was returned.
    assert.equal(await readFile(join(dir, SELF_SIGNED_CERT_FILE), 'utf8'), pair.certPem);
    assert.equal(await readFile(join(dir, SELF_SIGNED_KEY_FILE), 'utf8'), pair.keyPem);

    const generated = events.find((e) => e.msg === 'self-signed certificate generated');
    assert.ok(generated, JSON.stringify(events));
    assert.equal(generated.certFile, join(dir, SELF_SIGNED_CERT_FILE));
    assert.equal(generated.fingerprint256, leaf.fingerprint256);
    assert.equal(generated.notAfter, new Date(leaf.validTo).toISOString());
    assert.equal(generated.level, 30);
  });

  test('writes the key 0600 and the certificate 0644, creating missing directories', async () => {
    const dir = freshDir(); // two levels that do not exist yet
    await ensureSelfSignedCertificate({ dir, names: NAMES });
    assert.equal((await stat(join(dir, SELF_SIGNED_KEY_FILE))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, SELF_SIGNED_CERT_FILE))).mode & 0o777, 0o644);
    // No temporary files left behind by the atomic writes.
    assert.deepEqual((await readdir(dir)).sort(), [SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE].sort());
  });

  test('openssl parses it and sees ecdsa-with-SHA256, the extensions and the SANs', async () => {
    const dir = freshDir();
    const pair = await ensureSelfSignedCertificate({ dir, names: NAMES });
    const certFile = join(dir, SELF_SIGNED_CERT_FILE);
    const { stdout } = await execFileAsync('openssl', ['x509', '-noout', '-text', '-in', certFile]);
    assert.match(stdout, /Version: 3 \(0x2\)/);
    assert.match(stdout, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(stdout, /ASN1 OID: prime256v1/);
    assert.match(stdout, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(stdout, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(stdout, /Extended Key Usage:\s*\n\s+TLS Web Server Authentication\n/);
    assert.match(stdout, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1\n/);

    // The key identifier is the SHA-1 of the public key's EC point (RFC 5280 section 4.2.1.2, method 1).
    const jwk = createPrivateKey(pair.keyPem).export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const expected = createHash('sha1').update(point).digest('hex').toUpperCase().match(/../g)!.join(':');
    assert.match(stdout, new RegExp(`Subject Key Identifier:\\s*\\n\\s+${expected}\\n`));
  });

  test('a TLS client that trusts only this certificate completes a verified handshake', async () => {
    const dir = freshDir();
    const pair = await ensureSelfSignedCertificate({ dir, names: NAMES });
    const server = tls.createServer({ key: pair.keyPem, cert: pair.certPem }, (socket) => socket.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const connect = async (options: tls.ConnectionOptions) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: pair.certPem, ...options });
        try {
          await once(socket, 'secureConnect');
          return { authorized: socket.authorized, cipher: socket.getCipher().standardName, peer: socket.getPeerCertificate() };
        } finally {
          socket.destroy();
        }
      };

      const byName = await connect({ servername: 'localhost' });
      assert.equal(byName.authorized, true);
      assert.equal(byName.peer.fingerprint256, fingerprint(pair.certPem));
      // With no servername the client checks the IP address SAN.
      assert.equal((await connect({})).authorized, true);
      // A name the certificate does not hold must fail: the successes above really were verified.
      await assert.rejects(connect({ servername: 'example.com' }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      // And a client that does not trust it refuses it.
      await assert.rejects(connect({ servername: 'localhost', ca: undefined }), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    } finally {
      server.close();
      await once(server, 'close');
    }
  });

  test('a second call reuses the stored pair without rewriting it', async () => {
    const dir = freshDir();
    const first = await ensureSelfSignedCertificate({ dir, names: NAMES });
    const certStat = await stat(join(dir, SELF_SIGNED_CERT_FILE));
    const { log, events } = capturingLogger();
    const second = await ensureSelfSignedCertificate({ dir, names: [...NAMES].reverse(), log });
    assert.equal(fingerprint(second.certPem), fingerprint(first.certPem));
    assert.equal(second.keyPem, first.keyPem);
    assert.equal(second.source, 'self-signed');
    assert.equal((await stat(join(dir, SELF_SIGNED_CERT_FILE))).ino, certStat.ino);
    assert.deepEqual(events.map((e) => e.msg), ['self-signed certificate loaded']);
  });

  const replaced: Array<{ reason: string; spoil: (dir: string) => Promise<void>; names?: string[]; firstNow?: Date }> = [
    { reason: 'unreadable', spoil: (dir) => writeFile(join(dir, SELF_SIGNED_CERT_FILE), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n') },
    { reason: 'unreadable', spoil: (dir) => writeFile(join(dir, SELF_SIGNED_KEY_FILE), '') },
    {
      reason: 'key_mismatch',
      spoil: (dir) => {
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        return writeFile(join(dir, SELF_SIGNED_KEY_FILE), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      },
    },
    // Made 800 days ago, so 25 days are left: inside the 30-day window.
    { reason: 'expiring', spoil: async () => {}, firstNow: new Date(Date.now() - 800 * DAY_MS) },
    { reason: 'not_yet_valid', spoil: async () => {}, firstNow: new Date(Date.now() + 2 * DAY_MS) },
    { reason: 'names_changed', spoil: async () => {}, names: ['ftp.example.test', '127.0.0.1'] },
  ];
  for (const c of replaced) {
    test(`replaces the stored pair when it is ${c.reason}, and says why`, async () => {
      const dir = freshDir();
      const first = await ensureSelfSignedCertificate({ dir, names: NAMES, now: c.firstNow });
      await c.spoil(dir);
      const { log, events } = capturingLogger();
      const names = c.names ?? NAMES;
      const second = await ensureSelfSignedCertificate({ dir, names, log });

      assert.notEqual(fingerprint(second.certPem), fingerprint(first.certPem));
      const leaf = new X509Certificate(second.certPem);
      assert.equal(leaf.checkPrivateKey(createPrivateKey(second.keyPem)), true);
      assert.ok(Date.parse(leaf.validTo) - Date.now() > 800 * DAY_MS);
      assert.equal(await readFile(join(dir, SELF_SIGNED_CERT_FILE), 'utf8'), second.certPem);
      assert.equal(await readFile(join(dir, SELF_SIGNED_KEY_FILE), 'utf8'), second.keyPem);
      assert.equal(leaf.checkHost(names[0]!), names[0]);

      const why = events.find((e) => e.msg === 'self-signed certificate replaced');
      assert.equal(why?.reason, c.reason, JSON.stringify(events));
      assert.equal(why?.level, 40);
      assert.ok(events.some((e) => e.msg === 'self-signed certificate generated'));
    });
  }

  test('generates when only one of the two files exists', async () => {
    const dir = freshDir();
    const first = await ensureSelfSignedCertificate({ dir, names: NAMES });
    await rm(join(dir, SELF_SIGNED_KEY_FILE));
    const second = await ensureSelfSignedCertificate({ dir, names: NAMES });
    assert.notEqual(fingerprint(second.certPem), fingerprint(first.certPem));
    assert.equal((await stat(join(dir, SELF_SIGNED_KEY_FILE))).mode & 0o777, 0o600);
  });

  test('refuses names that cannot go into a certificate', async () => {
    const dir = freshDir();
    await assert.rejects(ensureSelfSignedCertificate({ dir, names: [] }), (err: unknown) => {
      assert.ok(err instanceof SelfSignedCertificateError);
      assert.equal(err.reason, 'no_names');
      return true;
    });
    for (const bad of ['has space', 'fe80::1%eth0', '']) {
      await assert.rejects(ensureSelfSignedCertificate({ dir, names: ['localhost', bad] }), { name: 'SelfSignedCertificateError', reason: 'invalid_name' });
    }
  });
});

describe('createSelfSignedCertificate', () => {
  test('puts IPv4, IPv6 and internationalised names into the SAN in their wire forms', async () => {
    const pair = await createSelfSignedCertificate({ names: ['Ftp.Example.Test', 'bücher.example', '10.1.2.3', '2001:db8::7', '::ffff:192.0.2.1'] });
    const leaf = new X509Certificate(pair.certPem);
    assert.equal(leaf.subject, 'CN=ftp.example.test\nO=ftpsd self-signed');
    assert.equal(leaf.checkHost('ftp.example.test'), 'ftp.example.test');
    assert.equal(leaf.checkHost('xn--bcher-kva.example'), 'xn--bcher-kva.example');
    assert.equal(leaf.checkIP('10.1.2.3'), '10.1.2.3');
    assert.equal(leaf.checkIP('2001:db8:0:0:0:0:0:7'), '2001:db8:0:0:0:0:0:7');
    assert.equal(
      leaf.subjectAltName,
      'DNS:ftp.example.test, DNS:xn--bcher-kva.example, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:7, IP Address:0:0:0:0:0:FFFF:C000:201',
    );
  });

  test('uses UTCTime before 2050 and GeneralizedTime after, as RFC 5280 requires', async () => {
    const pair = await createSelfSignedCertificate({ names: ['localhost'], now: new Date('2049-06-01T00:00:00Z') });
    const leaf = new X509Certificate(pair.certPem);
    assert.equal(new Date(leaf.validFrom).toISOString(), '2049-05-31T23:00:00.000Z');
    assert.equal(new Date(leaf.validTo).toISOString(), new Date(Date.parse('2049-06-01T00:00:00Z') + 825 * DAY_MS).toISOString());
  });

  test('is fast enough to run at every first start and in test setups', async () => {
    const started = performance.now();
    for (let i = 0; i < 20; i++) await createSelfSignedCertificate({ names: NAMES });
    const msEach = (performance.now() - started) / 20;
    // About 1 ms here; RSA key generation or a pure-JS signer would take hundreds.
    assert.ok(msEach < 50, `${msEach.toFixed(1)} ms per certificate`);
  });
});
