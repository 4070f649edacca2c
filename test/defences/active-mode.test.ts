import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { PY_REUSE_FTP_TLS, runCurl, runLftp, runPython } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// Active mode (PORT/EPRT, RFC 959 / RFC 2428) with FTP bounce protection (RFC 2577 §3): off by default; when on, the
// server connects only to the control connection's address, never to a privileged port, and only after 150, as the
// TLS server on the control session's context (so the data connection must resume the control session).

const CONTENT = 'active mode file\n'.repeat(1000);

/** A one-shot listener a test client uses as its PORT/EPRT address. */
async function clientListener(host = '127.0.0.1', port = 0): Promise<net.Server> {
  const server = net.createServer();
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

function portArg(host: string, port: number): string {
  return `${host.split('.').join(',')},${port >> 8},${port & 0xff}`;
}

/** Completes the TLS handshake as client on an accepted data socket; resolves with everything received. */
function tlsClientOn(socket: net.Socket, session: Buffer | undefined): { secure: tls.TLSSocket; received: Promise<Buffer> } {
  const secure = tls.connect({ socket, session, rejectUnauthorized: false, servername: 'localhost' });
  secure.on('error', () => undefined);
  const chunks: Buffer[] = [];
  secure.on('data', (c: Buffer) => chunks.push(c));
  const received = new Promise<Buffer>((resolve) => secure.on('close', () => resolve(Buffer.concat(chunks))));
  return { secure, received };
}

/**
 * Sends RETR a.txt on `c` (after a PORT/EPRT naming a listener of ours; `accepted` is its next connection) and checks
 * the active data connection: 150, the server connects from `from`, resumes the control session as TLS server, sends
 * the whole file, then 226.
 */
async function retrOverActive(c: ControlClient, accepted: Promise<[net.Socket]>, from: string): Promise<void> {
  c.write('RETR a.txt\r\n');
  assert.equal((await c.read())?.code, 150);
  const [socket] = await accepted;
  assert.equal(socket.remoteAddress, from);
  const { secure, received } = tlsClientOn(socket, c.tlsSession);
  await once(secure, 'secureConnect');
  assert.equal(secure.isSessionReused(), true);
  assert.equal((await received).toString(), CONTENT);
  assert.equal((await c.read())?.code, 226);
}

describe('active mode disabled (the default)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('answers PORT and EPRT with 502 and does not list EPRT in FEAT', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    try {
      assert.equal((await c.send('PORT 127,0,0,1,200,10')).code, 502);
      assert.equal((await c.send('EPRT |1|127.0.0.1|51210|')).code, 502);
      const feat = await c.send('FEAT');
      assert.equal(feat.code, 211);
      assert.ok(!feat.lines.some((l) => l.trim() === 'EPRT'), feat.text);
    } finally {
      c.close();
    }
  });
});

describe('active mode enabled', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { activeMode: { enabled: true, connectTimeoutMs: 2_000 }, defender: { threshold: 1_000 } } });
    await writeHomeFile(t, 'alice', 'a.txt', CONTENT);
  });
  after(() => t.close());

  it('lists EPRT in FEAT', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    try {
      const feat = await c.send('FEAT');
      assert.ok(feat.lines.some((l) => l.trim() === 'EPRT'), feat.text);
    } finally {
      c.close();
    }
  });

  it('connects out after 150, as TLS server resumed from the control session (EPRT and PORT)', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    try {
      for (const verb of ['EPRT', 'PORT'] as const) {
        const l = await clientListener();
        try {
          const p = portOf(l);
          const accepted = once(l, 'connection') as Promise<[net.Socket]>;
          let connectedEarly = false;
          void accepted.then(() => (connectedEarly = true));
          const arg = verb === 'EPRT' ? `|1|127.0.0.1|${p}|` : portArg('127.0.0.1', p);
          assert.equal((await c.send(`${verb} ${arg}`)).code, 200);
          await sleep(100);
          assert.equal(connectedEarly, false, 'no connection before the transfer command');
          await retrOverActive(c, accepted, '127.0.0.1');
        } finally {
          l.close();
        }
      }
    } finally {
      c.close();
    }
  });

  it('refuses a data connection that does not resume the control TLS session (425)', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    const l = await clientListener();
    try {
      assert.equal((await c.send(`EPRT |1|127.0.0.1|${portOf(l)}|`)).code, 200);
      const accepted = once(l, 'connection') as Promise<[net.Socket]>;
      c.write('RETR a.txt\r\n');
      assert.equal((await c.read())?.code, 150);
      const [socket] = await accepted;
      const { received } = tlsClientOn(socket, undefined);
      assert.equal((await received).length, 0, 'no file byte on a connection that did not resume');
      const final = await c.read();
      assert.equal(final?.code, 425);
      assert.match(final.text, /not resumed/);
      assert.ok(t.logs().some((r) => r.event === 'data_connection_refused' && r.reason === 'no_ticket_offered'));
    } finally {
      l.close();
      c.close();
    }
  });

  it('refuses another address with 500, logs it and scores the client; the server never connects there', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    const elsewhere = await clientListener('127.0.0.2');
    let contacted = false;
    elsewhere.on('connection', (s: net.Socket) => {
      contacted = true;
      s.destroy();
    });
    try {
      const p = portOf(elsewhere);
      for (const line of [`PORT ${portArg('127.0.0.2', p)}`, `EPRT |1|127.0.0.2|${p}|`, `EPRT |1|10.1.2.3|${p}|`]) {
        const r = await c.send(line);
        assert.equal(r.code, 500, line);
        assert.match(r.text, /^500 Illegal (PORT|EPRT) command/);
      }
      // Nothing is pending: the transfer command finds no data connection set up.
      assert.equal((await c.send('RETR a.txt')).code, 425);
      await sleep(200);
      assert.equal(contacted, false);
      const refused = t.logs().filter((r) => r.event === 'active_refused' && r.reason === 'foreign_address');
      assert.equal(refused.length, 3);
      const scored = t.logs().filter((r) => r.event === 'defender_score' && r.kind === 'protocolViolation' && r.ip === '127.0.0.1');
      assert.ok(scored.length >= 3, 'each attempt is scored as a protocol violation');
    } finally {
      elsewhere.close();
      c.close();
    }
  });

  it('never connects to a privileged port, even on the client address (FTP bounce)', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    // Root may listen below 1024: if it can, prove no connection arrives there.
    let privileged: net.Server | null = null;
    for (let p = 1023; p > 900 && privileged === null; p--) {
      privileged = await clientListener('127.0.0.1', p).catch(() => null);
    }
    let contacted = false;
    privileged?.on('connection', (s: net.Socket) => {
      contacted = true;
      s.destroy();
    });
    try {
      const p = privileged === null ? 21 : portOf(privileged);
      assert.equal((await c.send(`PORT ${portArg('127.0.0.1', p)}`)).code, 500);
      assert.equal((await c.send(`EPRT |1|127.0.0.1|${p}|`)).code, 500);
      assert.equal((await c.send('RETR a.txt')).code, 425);
      await sleep(200);
      assert.equal(contacted, false);
      assert.ok(t.logs().some((r) => r.event === 'active_refused' && r.reason === 'privileged_port' && r.targetPort === p));
    } finally {
      privileged?.close();
      c.close();
    }
  });

  it('answers malformed arguments, another family and EPSV ALL as the RFCs say', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    try {
      for (const line of ['PORT 127,0,0,1,300,1', 'PORT 127,0,0,1,1', 'PORT 99999999999999999999,0,0,1,4,1', 'EPRT |1|127.0.0.1|99999|', 'EPRT 127.0.0.1']) {
        assert.equal((await c.send(line)).code, 501, line);
      }
      assert.equal((await c.send('EPRT |2|::1|5000|')).code, 522);
      assert.equal((await c.send('EPRT |3|127.0.0.1|5000|')).code, 522, 'RFC 2428: a protocol the server does not speak');
      assert.equal((await c.send('EPSV ALL')).code, 200);
      assert.equal((await c.send('EPRT |1|127.0.0.1|5000|')).code, 503);
    } finally {
      c.close();
    }
  });

  it('answers 425 quickly when nothing listens at the PORT address', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret');
    try {
      const l = await clientListener();
      const p = portOf(l);
      l.close();
      await once(l, 'close');
      assert.equal((await c.send(`EPRT |1|127.0.0.1|${p}|`)).code, 200);
      const started = Date.now();
      c.write('RETR a.txt\r\n');
      assert.equal((await c.read())?.code, 150);
      const final = await c.read();
      assert.equal(final?.code, 425);
      assert.match(final.text, /could not connect/);
      assert.ok(Date.now() - started < 2_000);
      assert.equal((await c.send('NOOP')).code, 200, 'the session goes on');
    } finally {
      c.close();
    }
  });

  it('downloads and uploads in active mode with Python ftplib (session-reusing FTP_TLS)', async () => {
    const r = await runPython(
      `${PY_REUSE_FTP_TLS}
import io
ftp = ftps_login(${t.port}, 'alice', 'alice-secret')
ftp.set_pasv(False)
buf = io.BytesIO()
ftp.retrbinary('RETR a.txt', buf.write)
assert buf.getvalue().decode() == ${JSON.stringify(CONTENT)}, 'download differs'
ftp.storbinary('STOR py-active.bin', io.BytesIO(b'p' * 300000))
print(ftp.size('py-active.bin'))
ftp.quit()
`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '300000');
    assert.equal((await readFile(join(t.home('alice'), 'py-active.bin'))).length, 300_000);
  });

  it('downloads in active mode with lftp', async () => {
    const r = await runLftp('set ftp:passive-mode false\nset ftp:port-ipv4 127.0.0.1\ncat a.txt', { port: t.port, user: 'alice', password: 'alice-secret' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, CONTENT);
  });

  it('downloads in active mode with curl --ftp-port 127.0.0.1 over --ssl-reqd', async (ctx) => {
    const version = await runCurl(['--version']);
    const m = /^curl (\d+)\.(\d+)\.(\d+)/.exec(version.stdout);
    const [major, minor] = [Number(m?.[1]), Number(m?.[2])];
    // curl 7.87.0 to 7.88.x lost the TLS filter on active data connections and never starts TLS there
    // (curl/curl#10666, fixed in 8.0.0); with such a curl this case cannot pass whatever the server does.
    if (major === 7 && minor >= 87) {
      ctx.skip(`curl ${m?.[0].slice(5)} does not start TLS on active FTP data connections (curl#10666)`);
      return;
    }
    for (const extra of [[], ['--disable-eprt']]) {
      const r = await runCurl(['--ssl-reqd', '-k', '--ftp-port', '127.0.0.1', ...extra, '-u', 'alice:alice-secret', `ftp://127.0.0.1:${t.port}/a.txt`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, CONTENT);
    }
  });
});

describe('active mode over IPv6', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { listen: { host: '::1' }, activeMode: { enabled: true, connectTimeoutMs: 2_000 }, defender: { threshold: 1_000 } } });
    await writeHomeFile(t, 'alice', 'a.txt', CONTENT);
  });
  after(() => t.close());

  it('EPRT |2|::1|port| connects out from ::1 after 150, resumed, and refuses PORT and other addresses', async () => {
    const c = await ControlClient.loggedIn(t.port, 'alice', 'alice-secret', '::1');
    const l = await clientListener('::1');
    try {
      // PORT carries IPv4 only: on an IPv6 control connection it cannot name the client's address (RFC 2428 §2).
      assert.equal((await c.send('PORT 127,0,0,1,200,10')).code, 500);
      assert.equal((await c.send('EPRT |1|127.0.0.1|5000|')).code, 522);
      assert.equal((await c.send('EPRT |2|::2|5000|')).code, 500);
      const accepted = once(l, 'connection') as Promise<[net.Socket]>;
      assert.equal((await c.send(`EPRT |2|::1|${portOf(l)}|`)).code, 200);
      await retrOverActive(c, accepted, '::1');
    } finally {
      l.close();
      c.close();
    }
  });
});
