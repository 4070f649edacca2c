import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// The per-session TLS context: no renegotiation (each one costs the server a full handshake, and a client could ask
// for hundreds on one connection), and TLS 1.2 only with forward-secret AEAD suites unless tls.ciphers widens it.

const ALICE = { name: 'alice', password: 'alice-secret' };

/** Asks for a TLS 1.2 renegotiation; resolves with the error text, or 'accepted' when the server went along. */
function renegotiate(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no answer'), 5_000);
    const done = (outcome: string) => {
      clearTimeout(timer);
      resolve(outcome);
    };
    // OpenSSL's client fails the connection on the server's no_renegotiation alert: Node reports it as an 'error'.
    socket.once('error', (err) => done(`refused: ${err.message}`));
    socket.once('close', () => done('closed'));
    if (!socket.renegotiate({}, (err) => done(err === null ? 'accepted' : `refused: ${err.message}`))) done('refused locally');
  });
}

/** openssl s_client through AUTH TLS (-starttls ftp) with TLS 1.2 and one cipher; its exit code and what it printed. */
async function sClient(port: number, cipher: string): Promise<{ code: number | null; out: string }> {
  const r = await runProcess('openssl', ['s_client', '-starttls', 'ftp', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-cipher', cipher, '-servername', 'localhost'], { input: 'QUIT\r\n', timeoutMs: 15_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

describe('TLS policy of control and data connections', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: [ALICE], config: { defender: { threshold: 1_000 } } });
    await writeHomeFile(t, 'alice', 'file.txt', 'some content\n');
  });
  after(() => t.close());

  it('refuses renegotiation on the control connection; the session still answers or is closed cleanly', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.login(ALICE.name, ALICE.password, { maxVersion: 'TLSv1.2' })).code, 230);
      const socket = c.socket as tls.TLSSocket;
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      // Before: every one of these was accepted, a full handshake each.
      const outcomes: string[] = [];
      do outcomes.push(await renegotiate(socket));
      while (outcomes.length < 5 && outcomes.at(-1) === 'accepted');
      assert.match(outcomes.at(-1)!, /^refused|^closed|^no answer/, `renegotiations: ${outcomes.join(', ')}`);
      assert.equal(outcomes.length, 1, `renegotiations: ${outcomes.join(', ')}`);
      // OpenSSL's client gives up the connection on the refusal; a client that ignored it could go on.
      if (outcomes[0] === 'no answer') assert.equal((await c.send('NOOP')).code, 200, 'the session still answers');
    } finally {
      c.close();
    }
    // Closed cleanly: the server let go of the session.
    const deadline = Date.now() + 3_000;
    while (t.server.sessionCount() > 0 && Date.now() < deadline) await sleep(20);
    assert.equal(t.server.sessionCount(), 0);
    // The server is unharmed: a new session logs in and works.
    const again = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    assert.equal((await again.send('SIZE file.txt')).code, 213);
    again.close();
  });

  it('refuses renegotiation on a data connection; the control session still answers', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      assert.equal((await c.login(ALICE.name, ALICE.password, { maxVersion: 'TLSv1.2' })).code, 230);
      const data = c.dataConnect(await c.epsv(), { tlsOptions: { maxVersion: 'TLSv1.2' } });
      assert.ok(await data.secured, 'the data connection resumed the control session');
      const outcome = await renegotiate(data.socket);
      assert.match(outcome, /^refused|^closed/);
      data.socket.destroy();
      assert.equal((await c.send('NOOP')).code, 200);
    } finally {
      c.close();
    }
  });

  it('refuses CBC with SHA-1 over TLS 1.2 (openssl s_client -cipher ECDHE-ECDSA-AES128-SHA)', async () => {
    const r = await sClient(t.port, 'ECDHE-ECDSA-AES128-SHA');
    assert.notEqual(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /Cipher is ECDHE-ECDSA-AES128-SHA/);
  });

  it('accepts ECDHE with AES-GCM over TLS 1.2 (openssl s_client -cipher ECDHE-ECDSA-AES128-GCM-SHA256)', async () => {
    const r = await sClient(t.port, 'ECDHE-ECDSA-AES128-GCM-SHA256');
    assert.match(r.out, /Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/, r.out);
  });

  it('with an RSA certificate: refuses AES128-SHA (no forward secrecy), accepts ECDHE-RSA-AES256-GCM-SHA384', async () => {
    // Plain RSA key exchange needs an RSA certificate; the generated one is ECDSA.
    const dir = await mkdtemp(join(tmpdir(), 'ftpsd-rsa-'));
    const made = await runProcess('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-days', '2']);
    assert.equal(made.code, 0, made.stderr);
    const rsa = await startTestServer({ users: [ALICE], config: { tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') } } });
    try {
      const weak = await sClient(rsa.port, 'AES128-SHA');
      assert.notEqual(weak.code, 0, weak.out);
      assert.match(weak.out, /handshake failure|no shared cipher|alert/i);
      assert.doesNotMatch(weak.out, /Cipher is AES128-SHA/);
      const strong = await sClient(rsa.port, 'ECDHE-RSA-AES256-GCM-SHA384');
      assert.match(strong.out, /Cipher is ECDHE-RSA-AES256-GCM-SHA384/, strong.out);
    } finally {
      await rsa.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tls.ciphers widens the list for a partner that needs it', async () => {
    const wide = await startTestServer({ users: [ALICE], config: { tls: { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA:TLS_AES_128_GCM_SHA256' } } });
    try {
      const r = await sClient(wide.port, 'ECDHE-ECDSA-AES128-SHA');
      assert.match(r.out, /Cipher is ECDHE-ECDSA-AES128-SHA\b/, r.out);
      // TLS 1.3 stays available with the suite listed.
      const c = await ControlClient.loggedIn(wide.port, ALICE.name, ALICE.password);
      assert.equal((c.socket as tls.TLSSocket).getProtocol(), 'TLSv1.3');
      c.close();
    } finally {
      await wide.close();
    }
  });
});
