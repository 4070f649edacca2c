import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.js';
import { runCurl } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// Per-user network access policy: client certificates (mutual TLS) mapped to a user by SHA-256 fingerprint, and
// allowed client networks. Both are checked at PASS, after the password, and fail like a wrong password.

const ALICE = { name: 'alice', password: 'alice-secret' };
const CAROL = { name: 'carol', password: 'carol-secret' };
const DAVE = { name: 'dave', password: 'dave-secret', allowedNetworks: ['127.0.0.1/32'] };

describe('per-user access policy', () => {
  let t: TestServer;
  let carolCert: { keyPem: string; certPem: string };
  let otherCert: { keyPem: string; certPem: string };

  before(async () => {
    carolCert = await createSelfSignedCertificate({ names: ['carol.partner.example'] });
    otherCert = await createSelfSignedCertificate({ names: ['mallory.example'] });
    // The fingerprint as an operator pastes it from `openssl x509 -fingerprint -sha256`: upper case with colons.
    const fingerprint = new X509Certificate(carolCert.certPem).fingerprint256;
    t = await startTestServer({ users: [ALICE, { ...CAROL, clientCertificates: [fingerprint] }, DAVE], config: { defender: { threshold: 1_000 } } });
    await writeHomeFile(t, 'carol', 'report.csv', 'a,b\n1,2\n');
    await writeFile(join(t.dir, 'carol.crt'), carolCert.certPem);
    await writeFile(join(t.dir, 'carol.key'), carolCert.keyPem);
  });
  after(() => t.close());

  async function login(user: { name: string; password: string }, tlsOptions = {}, localAddress?: string) {
    const c = await ControlClient.connect(t.port, '127.0.0.1', localAddress);
    assert.equal((await c.read())?.code, 220);
    const reply = await c.login(user.name, user.password, tlsOptions);
    return { c, reply };
  }

  it('logs in a user whose client certificate matches, and its data connections still resume', async () => {
    const { c, reply } = await login(CAROL, { cert: carolCert.certPem, key: carolCert.keyPem });
    try {
      assert.equal(reply.code, 230, reply.text);
      const port = await c.epsv();
      const data = c.dataConnect(port);
      assert.equal((await c.send('RETR report.csv')).code, 150);
      assert.equal((await data.received).toString(), 'a,b\n1,2\n');
      assert.equal((await c.read())?.code, 226);
    } finally {
      c.close();
    }
  });

  it('refuses the right password without a certificate, or with another certificate', async () => {
    for (const options of [{}, { cert: otherCert.certPem, key: otherCert.keyPem }]) {
      const { c, reply } = await login(CAROL, options);
      try {
        assert.equal(reply.code, 530);
        assert.equal((await c.send('PWD')).code, 530, 'not logged in');
      } finally {
        c.close();
      }
    }
    const failures = t.logs().filter((l) => l.audit === true && l.event === 'login_failed' && l.user === 'carol' && l.reason === 'client_certificate');
    assert.equal(failures.length, 2);
  });

  it('asking for a certificate does not bother users who need none', async () => {
    for (const options of [{}, { cert: otherCert.certPem, key: otherCert.keyPem }]) {
      const { c, reply } = await login(ALICE, options);
      c.close();
      assert.equal(reply.code, 230, reply.text);
    }
  });

  it('works with curl --cert/--key, and curl without them is refused', async () => {
    const url = `ftp://127.0.0.1:${t.port}/report.csv`;
    const ok = await runCurl(['--ssl-reqd', '-k', '--cert', join(t.dir, 'carol.crt'), '--key', join(t.dir, 'carol.key'), '-u', `${CAROL.name}:${CAROL.password}`, url]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'a,b\n1,2\n');
    const refused = await runCurl(['--ssl-reqd', '-k', '-u', `${CAROL.name}:${CAROL.password}`, url]);
    assert.equal(refused.code, 67, 'curl: login denied');
  });

  it('refuses a user outside its allowed networks even with the right password', async () => {
    const outside = await login(DAVE, {}, '127.0.0.2');
    outside.c.close();
    assert.equal(outside.reply.code, 530);
    assert.ok(t.logs().some((l) => l.audit === true && l.event === 'login_failed' && l.user === 'dave' && l.reason === 'network_not_allowed' && l.ip === '127.0.0.2'));
    const inside = await login(DAVE, {}, '127.0.0.1');
    inside.c.close();
    assert.equal(inside.reply.code, 230);
  });
});
