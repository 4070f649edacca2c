import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect } from 'node:tls';
import { after, describe, it } from 'node:test';
import acme, { type Authorization } from 'acme-client';
import { AcmeError } from '../../src/acme/acme-error.js';
import { Http01Responder } from '../../src/acme/http01-responder.js';
import { TlsAlpnResponder } from '../../src/acme/tls-alpn-responder.js';
import { createLogger } from '../../src/log/logger.js';

const log = createLogger('silent');
const authz = (value: string) => ({ identifier: { type: 'dns', value }, status: 'pending', challenges: [] }) as unknown as Authorization;

describe('Http01Responder', () => {
  const responder = new Http01Responder({ host: '127.0.0.1', port: 0, log });
  after(() => responder.stop());

  it('answers the key authorization for a known token only, and only while started', async () => {
    await responder.start();
    const base = `http://127.0.0.1:${responder.port}`;
    await responder.create(authz('ftps.test'), { type: 'http-01', token: 'tok_1-A', url: 'u' }, 'tok_1-A.thumb');

    const ok = await fetch(`${base}/.well-known/acme-challenge/tok_1-A`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'tok_1-A.thumb');
    for (const path of ['/.well-known/acme-challenge/other', '/.well-known/acme-challenge/tok_1-A%2Fx', '/', '/.well-known/acme-challenge/']) {
      assert.equal((await fetch(`${base}${path}`)).status, 404, path);
    }
    assert.equal((await fetch(`${base}/.well-known/acme-challenge/tok_1-A`, { method: 'POST' })).status, 404);

    await responder.remove(authz('ftps.test'), { type: 'http-01', token: 'tok_1-A', url: 'u' });
    assert.equal((await fetch(`${base}/.well-known/acme-challenge/tok_1-A`)).status, 404);

    await responder.stop();
    assert.equal(responder.port, null);
    await assert.rejects(fetch(`${base}/.well-known/acme-challenge/tok_1-A`));
  });

  it('names the listener when its port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const busy = new Http01Responder({ host: '127.0.0.1', port, log });
    await assert.rejects(busy.start(), (err: unknown) =>
      err instanceof AcmeError && err.reason === 'responder_failed' && err.message.includes(`http-01 on 127.0.0.1:${port}`) && /EADDRINUSE/.test(err.message));
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  });
});

describe('TlsAlpnResponder', () => {
  const responder = new TlsAlpnResponder({ host: '127.0.0.1', port: 0, log });
  after(() => responder.stop());

  const handshake = (servername: string) =>
    new Promise<{ protocol: string | false | null; certPem: string }>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: responder.port ?? 0, servername, ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => {
        const raw = socket.getPeerX509Certificate()?.toString() ?? '';
        resolve({ protocol: socket.alpnProtocol, certPem: raw });
        socket.destroy();
      });
      socket.on('error', reject);
    });

  it('presents the RFC 8737 validation certificate for the requested name over acme-tls/1', async () => {
    await responder.start();
    const keyAuthorization = 'token.thumbprint';
    await responder.create(authz('alpn.ftps.test'), { type: 'tls-alpn-01', token: 'token', url: 'u' }, keyAuthorization);
    const { protocol, certPem } = await handshake('alpn.ftps.test');
    assert.equal(protocol, 'acme-tls/1');
    assert.equal(acme.crypto.isAlpnCertificateAuthorizationValid(certPem, keyAuthorization), true);
    assert.equal(acme.crypto.isAlpnCertificateAuthorizationValid(certPem, 'other.thumbprint'), false);

    await assert.rejects(handshake('unknown.ftps.test'), 'no certificate for a name without a challenge');
    await responder.remove(authz('alpn.ftps.test'));
    await assert.rejects(handshake('alpn.ftps.test'));
  });
});
