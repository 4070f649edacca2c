import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AcmeError } from '../../src/acme/acme-error.js';
import { AcmeStore, writeFileAtomic } from '../../src/acme/acme-store.js';

const meta = { directoryUrl: 'https://ca.test/dir', domains: ['ftps.test'], keyType: 'ecdsa-p256', issuedAt: '2026-01-01T00:00:00.000Z' };

describe('AcmeStore', () => {
  let work: string;
  const pair = (name: string) => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
      '-days', '1', '-subj', '/CN=ftps.test', '-addext', 'subjectAltName=DNS:ftps.test'], { cwd: work, stdio: 'ignore' });
    return Promise.all([readFile(join(work, `${name}.key`), 'utf8'), readFile(join(work, `${name}.pem`), 'utf8')]);
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ftpsd-acme-store-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('stores and loads a certificate, with the private key readable by the owner only', async () => {
    const store = new AcmeStore(join(work, 'a', 'acme'));
    assert.equal(await store.loadCertificate(), null);
    const [keyPem, certPem] = await pair('a');
    await store.saveCertificate(keyPem, certPem, meta);

    const loaded = await store.loadCertificate();
    assert.equal(loaded?.certPem, certPem);
    assert.equal(loaded?.keyPem, keyPem);
    assert.deepEqual(loaded?.meta, meta);
    assert.equal((await stat(store.keyFile)).mode & 0o777, 0o600);
    assert.equal((await stat(store.certFile)).mode & 0o777, 0o644);
    assert.equal((await stat(store.dir)).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(store.dir)).sort(), ['cert.json', 'cert.key', 'cert.pem'], 'no temporary files left behind');
  });

  it('returns null for an unparsable certificate, a key that does not match, or broken metadata', async () => {
    const store = new AcmeStore(join(work, 'b'));
    const [keyPem, certPem] = await pair('b1');
    const [otherKey] = await pair('b2');
    await store.saveCertificate(keyPem, certPem, meta);
    await writeFile(store.certFile, 'not a certificate');
    assert.equal(await store.loadCertificate(), null);
    await store.saveCertificate(otherKey, certPem, meta);
    assert.equal(await store.loadCertificate(), null);
    await store.saveCertificate(keyPem, certPem, meta);
    await writeFile(store.metaFile, '{"directoryUrl": 1}');
    assert.equal(await store.loadCertificate(), null);
  });

  it('creates the account key once and reuses it', async () => {
    const store = new AcmeStore(join(work, 'c'));
    const [keyPem] = await pair('c');
    let created = 0;
    const create = async () => {
      created += 1;
      return Buffer.from(keyPem);
    };
    assert.equal(await store.loadOrCreateAccountKey(create), keyPem);
    assert.equal(await store.loadOrCreateAccountKey(create), keyPem);
    assert.equal(created, 1);
    assert.equal((await stat(store.accountKeyFile)).mode & 0o777, 0o600);

    await writeFile(store.accountKeyFile, 'garbage');
    await assert.rejects(store.loadOrCreateAccountKey(create), (err: unknown) => err instanceof AcmeError && err.reason === 'store');
    assert.equal(created, 1, 'a broken account key is never silently replaced');
  });

  it('replaces a file atomically with the requested mode', async () => {
    const file = join(work, 'atomic.txt');
    await writeFile(file, 'old', { mode: 0o644 });
    await writeFileAtomic(file, 'new', 0o600);
    assert.equal(await readFile(file, 'utf8'), 'new');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });
});
