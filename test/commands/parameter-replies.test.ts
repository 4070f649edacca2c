import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// RFC 959 separates "501 Syntax error in parameters or arguments" from "504 Command not implemented for that
// parameter", and both from "502 Command not implemented". Clients branch on the class: one written against vsftpd
// sends STRU R, takes 504 as "stay with F" and aborts on 502 (drakkan/sftpgo#1997).

const PASSWORD = 'replies-secret';

/** [command, reply code, why]: sent in order on one logged-in session. */
const CASES: ReadonlyArray<readonly [string, number, string]> = [
  ['STRU R', 504, 'record structure: defined by RFC 959, not implemented'],
  ['STRU P', 504, 'page structure'],
  ['STRU F', 200, 'file structure'],
  ['STRU Z', 501, 'no such structure code'],
  ['MODE B', 504, 'block mode'],
  ['MODE C', 504, 'compressed mode'],
  ['MODE S', 200, 'stream mode'],
  ['MODE X', 501, 'no such mode'],
  ['TYPE E', 504, 'EBCDIC'],
  ['TYPE E N', 504, 'EBCDIC non-print'],
  ['TYPE A T', 504, 'ASCII with Telnet format effectors'],
  ['TYPE A C', 504, 'ASCII with carriage control'],
  ['TYPE L 7', 504, 'local byte size 7'],
  ['TYPE L 36', 504, 'local byte size 36'],
  ['TYPE L 8', 200, 'local byte size 8 is binary'],
  ['TYPE A N', 200, 'ASCII non-print'],
  ['TYPE I', 200, 'image'],
  ['TYPE X', 501, 'no such type code'],
  ['TYPE A X', 501, 'no such format'],
  ['TYPE L', 501, 'byte size missing'],
  ['TYPE I N', 501, 'image takes no format'],
  ['TYPE', 501, 'argument missing'],
  ['OPTS HASH MD5', 504, 'an algorithm that exists but is not offered'],
  ['OPTS HASH SHA-512', 504, 'likewise'],
  ['OPTS HASH SHA-256', 200, 'the one offered'],
  ['OPTS HASH SHA-256 MD5', 501, 'one algorithm at a time'],
  ['OPTS FROBNICATE ON', 501, 'RFC 2389: an option name not recognised is 501'],
  ['OPTS UTF8 ON', 200, 'RFC 2640'],
  ['PROT S', 536, 'RFC 4217: S and E have no meaning with TLS (RFC 2228 536)'],
  ['PROT E', 536, 'likewise'],
  ['PROT Q', 504, 'RFC 2228 lists 504 for a level the server does not know'],
  ['PROT P', 200, 'private'],
  ['AUTH KERBEROS_V4', 504, 'RFC 2228: a mechanism the server does not offer'],
  ['AUTH TLS', 503, 'already TLS: a bad sequence'],
  ['EPSV 3', 522, 'RFC 2428: a protocol number not served, with the ones that are'],
  ['EPSV banana', 501, 'not a protocol number'],
  ['HELP NOSUCH', 504, 'HELP is implemented; that verb is not'],
  ['HELP STOR', 214, 'a known verb'],
  ['SITE CHMOD 644 x', 502, 'SITE is not implemented at all'],
  ['LANG en', 502, 'RFC 2640 LANG is not implemented'],
  ['XYZZ', 500, 'not a command'],
];

describe('501, 502 and 504 as RFC 959 means them', () => {
  let t: TestServer;
  let c: ControlClient;
  before(async () => {
    t = await startTestServer({ users: [{ name: 'alice', password: PASSWORD }], config: { defender: { enabled: false } } });
    c = await ControlClient.loggedIn(t.port, 'alice', PASSWORD);
  });
  after(async () => {
    c?.close();
    await t?.close();
  });

  for (const [line, code, why] of CASES) {
    it(`${line} → ${code} (${why})`, async () => {
      const r = await c.send(line);
      assert.equal(r.code, code, r.text);
    });
  }

  it('an unsupported parameter keeps the previous setting (STRU R after TYPE A leaves ASCII and file structure)', async () => {
    assert.equal((await c.send('TYPE A')).code, 200);
    assert.equal((await c.send('STRU R')).code, 504);
    assert.equal((await c.send('TYPE E')).code, 504);
    const stat = await c.send('STAT');
    assert.match(stat.text, /TYPE: ASCII; STRUcture: File; transfer MODE: Stream/);
  });

  it('AUTH with an unknown mechanism before TLS is 504 (RFC 2228), with no mechanism 501', async () => {
    const plain = await ControlClient.connect(t.port);
    try {
      await plain.read();
      assert.equal((await plain.send('AUTH KERBEROS_V4')).code, 504);
      assert.equal((await plain.send('AUTH')).code, 501);
    } finally {
      plain.close();
    }
  });
});
