import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { PY_REUSE_FTP_TLS, runCurl, runPython } from '../helpers/clients.js';
import { passiveRange, startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// PROXY protocol on the control port: a trusted balancer names the client, and from then on limits, bans, the audit
// trail and the data connection's address check see the client, never the balancer. A header from anywhere else, a
// malformed one, or none from a trusted balancer closes the connection, and its addresses are never believed.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const CONTENT = Buffer.from('through the balancer\n');

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 3_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves when the server closes the socket; rejects after `ms` if it does not. */
function closedWithin(c: ControlClient, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (c.socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error('connection still open')), ms);
    c.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('PROXY protocol on the control port', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { proxyProtocol: { trustedCidrs: ['127.0.0.1/32'], headerTimeoutMs: 300 }, defender: { threshold: 10_000 } } });
    await writeHomeFile(t, USER, 'file.txt', CONTENT);
  });
  after(() => t.close());

  test('a v1 header from the trusted balancer names the client in the audit trail', async () => {
    const c = await ControlClient.connectProxied(t.port, 'PROXY TCP4 203.0.113.9 127.0.0.1 51234 2121\r\n');
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.login(USER, PASSWORD)).code, 230);
      const connect = await waitFor('connect record', () => t.logs().find((l) => l.audit === true && l.event === 'connect' && l.ip === '203.0.113.9'));
      assert.equal(connect.via, '127.0.0.1');
      assert.equal(connect.port, 51234);
      await waitFor('login record of the client address', () => t.logs().find((l) => l.audit === true && l.event === 'login' && l.ip === '203.0.113.9'));
    } finally {
      c.close();
    }
  });

  test("a ban of the client's address refuses it through the balancer; other clients of the same balancer still get in", async () => {
    t.server.defender!.ban('198.51.100.77', 60_000, 'test');
    const banned = await ControlClient.connectProxied(t.port, 'PROXY TCP4 198.51.100.77 127.0.0.1 4000 2121\r\n');
    assert.equal((await banned.read())?.code, 421);
    banned.close();
    const other = await ControlClient.connectProxied(t.port, 'PROXY TCP4 198.51.100.78 127.0.0.1 4000 2121\r\n');
    assert.equal((await other.read())?.code, 220);
    other.close();
  });

  test('the data connection must come from the client named in the header, not from the balancer', async () => {
    const c = await ControlClient.connectProxied(t.port, 'PROXY TCP4 192.0.2.44 127.0.0.1 4000 2121\r\n');
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.login(USER, PASSWORD)).code, 230);
      const port = await c.epsv();
      const data = c.dataConnect(port);
      assert.equal((await c.send('RETR file.txt')).code, 150);
      assert.equal((await c.read())?.code, 425);
      assert.equal((await data.received).length, 0);
      await waitFor('wrong_address refusal', () => t.logs().find((l) => l.event === 'data_connection_refused' && l.reason === 'wrong_address' && l.expected === '192.0.2.44'));
    } finally {
      c.close();
    }
  });

  test('the trusted balancer sending no header within headerTimeoutMs is closed without a greeting', async () => {
    const c = await ControlClient.connect(t.port);
    await closedWithin(c, 3_000);
    assert.equal(await c.read(), null, 'no 220 before the header');
    await waitFor('refusal log', () => t.logs().find((l) => l.event === 'proxy_header_refused' && l.reason === 'no_header'));
  });

  test('malformed or truncated headers close the connection and are logged with a reason', async () => {
    for (const [header, reason] of [
      ['PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n', 'v1_address'],
      ['USER alice\r\n', 'no_proxy_header'],
      ['PROXY TCP4 203.0.113.9 127.0.0.1', 'truncated'],
    ] as const) {
      const c = await ControlClient.connectProxied(t.port, header);
      await closedWithin(c, 3_000);
      assert.equal(await c.read(), null, `no greeting after ${JSON.stringify(header)}`);
      await waitFor(`refusal ${reason}`, () => t.logs().find((l) => l.event === 'proxy_header_refused' && l.reason === reason));
    }
  });

  test('a PROXY header from an address that is not a trusted balancer is refused and never believed', async () => {
    const c = await ControlClient.connect(t.port, '127.0.0.1', '127.0.0.2');
    assert.equal((await c.read())?.code, 220);
    const r = await c.send('PROXY TCP4 203.0.113.200 127.0.0.1 1 2');
    assert.equal(r.code, 421);
    await closedWithin(c, 3_000);
    await waitFor('untrusted log line', () => t.logs().find((l) => l.event === 'proxy_header_untrusted' && l.ip === '127.0.0.2'));
    assert.equal(t.logs().some((l) => l.ip === '203.0.113.200'), false, "the header's address appears nowhere");
  });
});

/** HAProxy from Debian in front of the server, `send-proxy-v2`, on a free loopback port. */
async function startHaproxy(dir: string, backendPort: number): Promise<{ port: number; proc: ChildProcess }> {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      `frontend ftp`,
      `  bind 127.0.0.1:${port}`,
      '  default_backend nodes',
      'backend nodes',
      `  server node1 127.0.0.1:${backendPort} send-proxy-v2`,
      '',
    ].join('\n'),
  );
  // Debian installs it in /usr/sbin, which not every PATH holds.
  const proc = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return { port, proc };
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('behind a real HAProxy with send-proxy-v2', () => {
  let t: TestServer;
  let dir: string;
  let haproxy: { port: number; proc: ChildProcess };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-haproxy-'));
    // Node-aware passive mode: data connections go straight to the node (here on 127.0.0.1), not through HAProxy.
    t = await startTestServer({ config: { proxyProtocol: { trustedCidrs: ['127.0.0.1/32'] }, pasv: passiveRange() } });
    await writeHomeFile(t, USER, 'file.txt', CONTENT);
    haproxy = await startHaproxy(dir, t.port);
  });
  after(async () => {
    haproxy?.proc.kill('SIGKILL');
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('curl from 127.0.0.5 through HAProxy: the session is the client\'s, every transfer works', async () => {
    const up = join(dir, 'up.bin');
    const body = Buffer.alloc(256 * 1024, 7);
    await writeFile(up, body);
    const base = `ftp://127.0.0.1:${haproxy.port}`;
    const curl = (...args: string[]) => runCurl(['--ssl-reqd', '-k', '--interface', '127.0.0.5', '-u', `${USER}:${PASSWORD}`, ...args]);
    const down = await curl(`${base}/file.txt`, '-o', join(dir, 'got.txt'));
    assert.equal(down.code, 0, down.stderr);
    const upload = await curl('--tls-max', '1.2', '-T', up, `${base}/up.bin`);
    assert.equal(upload.code, 0, upload.stderr);
    assert.deepEqual(await readFile(join(dir, 'got.txt')), CONTENT);
    assert.equal(createHash('sha256').update(await readFile(join(t.home(USER), 'up.bin'))).digest('hex'), createHash('sha256').update(body).digest('hex'));
    const connect = t.logs().find((l) => l.audit === true && l.event === 'connect' && l.ip === '127.0.0.5');
    assert.ok(connect !== undefined, 'the audit trail names the client, not the balancer');
    assert.equal(connect.via, '127.0.0.1');
    const transfers = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.ip === '127.0.0.5');
    assert.ok(transfers.length >= 2, 'both transfers recorded for the client address');
  });

  test('Python ftplib from 127.0.0.6 through HAProxy lists and downloads', async () => {
    const r = await runPython(
      PY_REUSE_FTP_TLS +
        `
import io, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ftp = ReusedSessionFTP_TLS(context=ctx, timeout=10, source_address=('127.0.0.6', 0))
ftp.connect('127.0.0.1', ${haproxy.port}); ftp.auth(); ftp.login('${USER}', '${PASSWORD}'); ftp.prot_p()
names = ftp.nlst()
buf = io.BytesIO(); ftp.retrbinary('RETR file.txt', buf.write)
print(sorted(names), buf.getvalue().decode().strip())
ftp.quit()
`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /file\.txt.*through the balancer/);
    assert.ok(t.logs().some((l) => l.audit === true && l.event === 'login' && l.ip === '127.0.0.6'));
  });
});
