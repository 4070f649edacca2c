import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import { CURL_UPLOAD_TLS_ARGS, runCurl, runLftp } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';
import { startServeProcess } from '../ops/serve-process.js';

// Implicit FTPS (TLS from the first byte, `ftps://` in curl and lftp) on a second listener that shares everything
// else with the explicit one: session binding of data connections, passive ports, caps, bans and audit.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const OTHER = { name: 'mallory', password: 'mallory-secret' };
type Line = Record<string, unknown>;

/** Everything a raw TCP peer receives until the server closes (or `maxMs` passes: then `closed` is false). */
async function plainPeer(port: number, send: string | null, maxMs: number, localAddress?: string): Promise<{ bytes: Buffer; closed: boolean; ms: number }> {
  const started = Date.now();
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  if (send !== null) socket.write(send);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), maxMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { bytes: Buffer.concat(chunks), closed, ms: Date.now() - started };
}

describe('implicit FTPS listener', () => {
  let t: TestServer;
  let implicitPort: number;
  let local: string;
  const clients: ControlClient[] = [];
  const audits = (event: string): Line[] => t.logs().filter((l) => l.audit === true && l.event === event);
  const implicitLogin = async (user = USER, password = PASSWORD): Promise<ControlClient> => {
    const c = await ControlClient.connectImplicit(implicitPort);
    clients.push(c);
    assert.equal((await c.read())?.code, 220);
    assert.equal((await c.send('PBSZ 0')).code, 200);
    assert.equal((await c.send('PROT P')).code, 200);
    assert.equal((await c.send(`USER ${user}`)).code, 331);
    assert.equal((await c.send(`PASS ${password}`)).code, 230);
    return c;
  };

  before(async () => {
    t = await startTestServer({
      users: [{ name: USER, password: PASSWORD }, OTHER],
      config: { implicit: { enabled: true, port: 0 }, tls: { handshakeTimeoutMs: 1_500 }, defender: { threshold: 1_000 } },
    });
    implicitPort = t.server.implicitPort!;
    local = await mkdtemp(join(tmpdir(), 'ftpsd-implicit-'));
  });
  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
    await rm(local, { recursive: true, force: true });
  });

  it('is off by default, on an unprivileged port when turned on', () => {
    const d = defaultConfig().implicit;
    assert.deepEqual(d, { enabled: false, host: '127.0.0.1', port: 9990 });
    assert.equal(typeof implicitPort, 'number');
    assert.notEqual(implicitPort, t.port);
    const listening = t.logs().find((l) => l.event === 'listening');
    assert.deepEqual(listening?.implicit, { host: '127.0.0.1', port: implicitPort }, 'the start-up line names both listeners');
    assert.equal(listening?.port, t.port);
  });

  it('greets inside TLS, refuses AUTH with a reason, and still wants PBSZ 0 / PROT P before a data connection', async () => {
    const c = await ControlClient.connectImplicit(implicitPort);
    clients.push(c);
    const greeting = await c.read();
    assert.equal(greeting?.code, 220);
    const auth = await c.send('AUTH TLS');
    assert.equal(auth.code, 503);
    assert.match(auth.text, /implicit FTPS connection is already protected by TLS/);
    assert.equal((await c.send('AUTH SSL')).code, 503, 'every AUTH mechanism');
    // Login needs TLS (tls.requireForLogin): an implicit connection has it.
    assert.equal((await c.send(`USER ${USER}`)).code, 331);
    assert.equal((await c.send(`PASS ${PASSWORD}`)).code, 230);
    // RFC 4217 defaults after the handshake: no PBSZ yet, PROT C, so data waits for PBSZ 0 and PROT P.
    assert.equal((await c.send('PROT P')).code, 503, 'PBSZ first');
    assert.equal((await c.send('EPSV')).code, 521, 'clear data refused (tls.requireForData)');
    assert.equal((await c.send('PBSZ 0')).code, 200);
    assert.equal((await c.send('PROT P')).code, 200);
    assert.equal((await c.send('EPSV')).code, 229);
    const stat = await c.send('STAT');
    assert.match(stat.text, /TLS: TLSv1\.3 /);
    const connect = audits('connect').filter((l) => l.mode === 'implicit');
    assert.ok(connect.length >= 1, 'the connect audit record names the implicit listener');
    assert.ok(audits('tls').some((l) => l.mode === 'implicit' && l.protocol === 'TLSv1.3'));
  });

  it('curl ftps://: lists, uploads and downloads several files in one session each, SHA-256 equal', async () => {
    const names = ['one.bin', 'two.bin', 'three.bin'];
    const bodies = new Map(names.map((n, i) => [n, randomBytes([0, 70_000, 3 * 1024 * 1024][i]!)]));
    for (const [n, b] of bodies) await writeFile(join(local, n), b);
    const base = `ftps://127.0.0.1:${implicitPort}`;
    const curl = (args: string[]) => runCurl(['-k', '--user', `${USER}:${PASSWORD}`, ...args]);

    const up = await curl([...CURL_UPLOAD_TLS_ARGS, '-T', `${local}/{${names.join(',')}}`, `${base}/curl/`, '--ftp-create-dirs']);
    assert.equal(up.code, 0, up.stderr);
    for (const [n, b] of bodies) assert.equal(sha256(await readFile(join(t.home(USER), 'curl', n))), sha256(b), n);

    const list = await curl([`${base}/curl/`]);
    assert.equal(list.code, 0, list.stderr);
    for (const n of names) assert.match(list.stdout, new RegExp(`${n.replace('.', '\\.')}\\r?\\n`));

    // Several downloads over one control connection. TLS 1.2 here: curl's OpenSSL uses a TLS 1.3 ticket only once
    // (RFC 8446 C.4) and this server issues no new ticket on a resumed data connection, so over TLS 1.3 every second
    // transfer of one curl run offers no session (on the explicit listener just the same). One TLS 1.3 run follows.
    const downArgs = names.flatMap((n) => ['-o', join(local, `${n}.down`), `${base}/curl/${n}`]);
    const down = await curl(['--tls-max', '1.2', ...downArgs]);
    assert.equal(down.code, 0, down.stderr);
    for (const [n, b] of bodies) assert.equal(sha256(await readFile(join(local, `${n}.down`))), sha256(b), n);
    const single = await curl(['--tlsv1.3', '-o', join(local, 'three.tls13'), `${base}/curl/three.bin`]);
    assert.equal(single.code, 0, single.stderr);
    assert.equal(sha256(await readFile(join(local, 'three.tls13'))), sha256(bodies.get('three.bin')!));

    const transfers = audits('transfer').filter((l) => typeof l.path === 'string' && (l.path as string).startsWith('/curl/'));
    assert.equal(transfers.length, 7, 'three uploads and four downloads audited');
    assert.ok(transfers.some((r) => r.tlsVersion === 'TLSv1.3'));
    for (const r of transfers) {
      assert.equal(r.result, 'ok');
      assert.equal(r.resumed, true, `${String(r.direction)} ${String(r.path)} resumed the control session`);
    }
    const uploads = transfers.filter((r) => r.direction === 'upload');
    for (const r of uploads) assert.equal(r.sha256, sha256(bodies.get((r.path as string).slice('/curl/'.length))!));
  });

  it('lftp ftps:// (ftp:ssl-force): mirrors a tree up and back down unchanged', async () => {
    const src = join(local, 'tree');
    const files: Record<string, Buffer> = { 'a.txt': Buffer.from('alpha\n'), 'sub/b.bin': randomBytes(200_000), 'sub/deeper/c.bin': randomBytes(1) };
    for (const [p, b] of Object.entries(files)) {
      await mkdir(join(src, p, '..'), { recursive: true });
      await writeFile(join(src, p), b);
    }
    const back = join(local, 'tree-back');
    const r = await runLftp([`open -u ${USER},${PASSWORD} ftps://127.0.0.1:${implicitPort}`, `mirror -R ${src} /lftp`, `mirror /lftp ${back}`].join('\n'), {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    for (const [p, b] of Object.entries(files)) {
      assert.equal(sha256(await readFile(join(t.home(USER), 'lftp', p))), sha256(b), `stored ${p}`);
      assert.equal(sha256(await readFile(join(back, p))), sha256(b), `mirrored back ${p}`);
    }
    assert.deepEqual((await readdir(back, { recursive: true })).sort(), ['a.txt', 'sub', 'sub/b.bin', 'sub/deeper', 'sub/deeper/c.bin']);
    const lftpTransfers = audits('transfer').filter((l) => typeof l.path === 'string' && (l.path as string).startsWith('/lftp/'));
    assert.equal(lftpTransfers.length, 6);
    for (const l of lftpTransfers) assert.equal(l.resumed, true);
  });

  it('binds data connections to their control session: a foreign TLS session gets 425, its own one the file', async () => {
    const body = randomBytes(50_000);
    await writeHomeFile(t, USER, 'bound.bin', body);
    const victim = await implicitLogin();
    // Another partner on the same address (the same user's own sibling connection would be let through).
    const intruder = await implicitLogin(OTHER.name, OTHER.password);
    const refusedBefore = audits('data_connection_refused').length;

    const port = await victim.epsv();
    victim.write('RETR bound.bin\r\n');
    const foreign = intruder.dataConnect(port);
    assert.equal((await victim.read())?.code, 150);
    const refused = await victim.read();
    assert.equal(refused?.code, 425);
    assert.match(refused!.text, /not resumed/);
    assert.equal((await foreign.received).length, 0, 'not a byte of the file went to the other session');
    const record = audits('data_connection_refused').slice(refusedBefore);
    assert.equal(record.length, 1);
    assert.equal(record[0]!.reason, 'foreign_session');

    const again = await victim.epsv();
    victim.write('RETR bound.bin\r\n');
    const own = victim.dataConnect(again);
    assert.equal((await victim.read())?.code, 150);
    assert.equal((await victim.read())?.code, 226);
    assert.equal(sha256(await own.received), sha256(body));
  });

  it('serves nothing to a plain-text client: no greeting, no reply, the connection is closed', async () => {
    const talker = await plainPeer(implicitPort, 'USER alice\r\n', 5_000);
    assert.ok(talker.closed, 'closed after its plaintext failed the handshake');
    assert.doesNotMatch(talker.bytes.toString('latin1'), /\d{3}[ -]/, 'no FTP reply in clear text');
    const silent = await plainPeer(implicitPort, null, 5_000);
    assert.ok(silent.closed, 'closed at tls.handshakeTimeoutMs');
    assert.equal(silent.bytes.length, 0, 'not even a greeting');
    assert.ok(silent.ms >= 1_000, `waited for the handshake timeout (${silent.ms} ms)`);
  });

  it('shares bans with the explicit listener: a banned address is cut without a TLS handshake', async () => {
    t.server.defender!.ban('127.0.0.3', 60_000, 'test');
    const implicit = await plainPeer(implicitPort, null, 3_000, '127.0.0.3');
    assert.ok(implicit.closed);
    assert.equal(implicit.bytes.length, 0);
    const explicit = await plainPeer(t.port, null, 3_000, '127.0.0.3');
    assert.match(explicit.bytes.toString('utf8'), /^421 .*blocked/);
    assert.ok(t.logs().some((l) => l.event === 'connection_refused' && l.ip === '127.0.0.3' && l.mode === 'implicit' && l.reason === 'banned'));
  });
});

describe('implicit FTPS listener and the per-address cap', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { implicit: { enabled: true, port: 0 }, limits: { maxSessionsPerIp: 1 } } });
  });
  after(async () => t?.close());

  it('counts implicit and explicit sessions together and says why inside TLS', async () => {
    const explicit = await ControlClient.connect(t.port);
    try {
      assert.equal((await explicit.read())?.code, 220);
      const implicit = await ControlClient.connectImplicit(t.server.implicitPort!);
      try {
        const r = await implicit.read();
        assert.equal(r?.code, 421);
        assert.match(r!.text, /Too many connections from your address/);
        assert.equal(await implicit.read(), null, 'then closed');
      } finally {
        implicit.close();
      }
    } finally {
      explicit.close();
    }
  });
});

describe('ftpsd serve with implicit FTPS on', () => {
  it('names both listeners on the console and in the start-up log line, and answers on both', async () => {
    const p = await startServeProcess({ users: { alice: PASSWORD }, config: { implicit: { enabled: true, host: '127.0.0.1', port: 0 } } });
    try {
      const line = await p.waitForLog((l) => l.event === 'listening');
      const implicit = line.implicit as { host: string; port: number };
      assert.equal(implicit.host, '127.0.0.1');
      assert.match(p.stderr(), new RegExp(`listening on 127\\.0\\.0\\.1:${p.port} \\(explicit FTPS: AUTH TLS\\) and 127\\.0\\.0\\.1:${implicit.port} \\(implicit FTPS`));
      const c = await ControlClient.connectImplicit(implicit.port);
      try {
        assert.equal((await c.read())?.code, 220);
      } finally {
        c.close();
      }
    } finally {
      p.kill();
      await p.exited;
      await rm(p.dir, { recursive: true, force: true });
    }
  });
});
