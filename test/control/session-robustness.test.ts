import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ControlClient, type FtpReply } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Hostile or broken input on the control channel: the session answers sensibly and keeps serving, or, for plaintext
// injected after AUTH TLS, closes without ever starting TLS.

const USERS = [{ name: 'alice', password: 'alice-robust-pw' }];
const IAC = 0xff;
const clients: ControlClient[] = [];

async function connect(port: number): Promise<ControlClient> {
  const c = await ControlClient.connect(port);
  clients.push(c);
  assert.equal((await c.read())?.code, 220, 'greeting');
  return c;
}

async function loggedIn(port: number): Promise<ControlClient> {
  const c = await ControlClient.loggedIn(port, 'alice', 'alice-robust-pw');
  clients.push(c);
  return c;
}

/** Reads replies until one has `code`; fails if the connection closes or too many or too slow. */
async function readUntil(c: ControlClient, code: number, maxReplies = 200): Promise<FtpReply[]> {
  const seen: FtpReply[] = [];
  for (let i = 0; i < maxReplies; i++) {
    const r = await c.read(5_000);
    assert.ok(r !== null, `connection closed after ${seen.map((s) => s.code).join(',')}`);
    seen.push(r);
    if (r.code === code) return seen;
  }
  assert.fail(`no ${code} within ${maxReplies} replies`);
}

/** Collects every byte the server sends until it closes the connection. */
function rawUntilClose(c: ControlClient, timeoutMs = 5_000): Promise<string> {
  const socket = c.socket;
  socket.removeAllListeners('data');
  let text = '';
  socket.on('data', (d: Buffer | string) => (text += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed; received ${JSON.stringify(text)}`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

describe('control channel robustness', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({ users: USERS, config: { defender: { enabled: false } } });
  });

  after(async () => {
    for (const c of clients) c.close();
    await srv?.close();
  });

  describe('plaintext pipelined after AUTH TLS', () => {
    for (const [name, bytes] of [
      ['a whole command', 'AUTH TLS\r\nUSER x\r\n'],
      ['part of a command', 'AUTH TLS\r\nUS'],
    ] as const) {
      it(`closes the connection without a TLS handshake (${name})`, async () => {
        const c = await connect(srv.port);
        const received = rawUntilClose(c);
        c.write(bytes);
        const text = await received;
        assert.doesNotMatch(text, /^234/m, 'no go-ahead for TLS');
        assert.match(text, /^421 /m);
        assert.ok(!text.includes('331'), 'the injected USER was not run');
      });
    }

    it('still upgrades when AUTH TLS comes alone', async () => {
      const c = await connect(srv.port);
      assert.equal((await c.authTls()).code, 234);
      assert.equal((await c.send('NOOP')).code, 200);
    });
  });

  it('answers a 100 KiB line with 500 and keeps the session', async () => {
    const c = await loggedIn(srv.port);
    c.write(`STOR ${'A'.repeat(100 * 1024)}\r\n`);
    const r = await c.read();
    assert.equal(r?.code, 500);
    assert.match(r.text, /too long/i);
    assert.equal((await c.send('NOOP')).code, 200);
    assert.equal((await c.send('PWD')).code, 257, 'still logged in');
  });

  it('answers NUL bytes and invalid UTF-8 with an error and keeps the session', async () => {
    const c = await loggedIn(srv.port);
    c.write(Buffer.from('NO\0OP\r\n', 'latin1'));
    assert.equal((await c.read())?.code, 500);
    c.write(Buffer.from('CWD a\0b\r\n', 'latin1'));
    const cwd = await c.read();
    assert.ok(cwd !== null && cwd.code >= 500 && cwd.code < 600, `CWD with NUL: ${cwd?.text}`);
    c.write(Buffer.from([...Buffer.from('CWD '), 0xc3, 0x28, 0x0d, 0x0a]));
    const bad = await c.read();
    assert.equal(bad?.code, 500);
    assert.match(bad.text, /UTF-8/);
    assert.equal((await c.send('NOOP')).code, 200);
  });

  it('ignores Telnet IP and DM before a command (as clients send before ABOR)', async () => {
    const c = await loggedIn(srv.port);
    c.write(Buffer.from([IAC, 244, IAC, 242, ...Buffer.from('NOOP\r\n')]));
    assert.equal((await c.read())?.code, 200);
    c.write(Buffer.from([IAC, 251, 1, ...Buffer.from('SYST\r\n')]));
    assert.equal((await c.read())?.code, 215);
  });

  it('survives random binary blobs, including an unterminated Telnet subnegotiation, and still answers NOOP', async () => {
    const blobs = [
      randomBytes(4096),
      randomBytes(4096),
      Buffer.concat([randomBytes(100), Buffer.from([IAC, 250]), randomBytes(300).map((b) => (b === IAC ? 0 : b))]),
      Buffer.from([IAC]),
    ];
    for (const blob of blobs) {
      const c = await loggedIn(srv.port);
      c.write(blob);
      // End whatever partial line the blob left, then a command that must be answered.
      c.write('\r\nNOOP\r\n');
      const replies = await readUntil(c, 200);
      assert.ok(replies.every((r) => r.code >= 200 && r.code < 600));
      assert.equal((await c.send('PWD')).code, 257, 'same session still logged in');
    }
    const other = await loggedIn(srv.port);
    assert.equal((await other.send('NOOP')).code, 200, 'another session works');
  });

  it('survives garbage before AUTH TLS too', async () => {
    const c = await connect(srv.port);
    c.write(randomBytes(4096));
    c.write('\r\nNOOP\r\n');
    await readUntil(c, 200);
    assert.equal((await c.authTls()).code, 234);
    assert.equal((await c.send('NOOP')).code, 200);
  });
});
