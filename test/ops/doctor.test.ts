import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { checkCertificate, checkExternalAddress, checkPassiveRange } from '../../src/ops/doctor-checks.js';
import type { CheckResult } from '../../src/ops/doctor-report.js';
import { checkSession } from '../../src/ops/doctor-session.js';
import { runDoctor } from '../../src/ops/doctor.js';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.js';
import { passiveRange, startTestServer, type TestServer } from '../helpers/server.js';
import { BIN, ROOT } from './serve-process.js';

const byCheck = (results: CheckResult[], check: string) => results.find((r) => r.check === check);
const failures = (results: CheckResult[]) => results.filter((r) => r.status === 'fail');

describe('doctor on a good setup', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('every check passes, the transfer resumed the control session', async () => {
    const results = await runDoctor({ load: () => ({ config: t.server.config, file: null, baseDir: t.dir }), port: t.port, user: 'alice', password: 'alice-secret' });
    assert.deepEqual(failures(results), []);
    for (const check of ['configuration', 'certificate expiry', 'certificate names', 'passive ports', 'external address', 'control connection', 'AUTH TLS', 'login', 'data connection (upload)', 'data connection (download)']) {
      assert.equal(byCheck(results, check)?.status, 'pass', `${check}: ${JSON.stringify(byCheck(results, check))}`);
    }
    assert.equal(byCheck(results, 'certificate chain')?.status, 'warn', 'a self-signed certificate is a warning, with its fingerprint');
    assert.match(byCheck(results, 'certificate chain')?.detail ?? '', /fingerprint/);
  });

  test('the CLI reads the password from standard input, prints the report and exits 0', async () => {
    const cfg = join(t.dir, 'doctor.yaml');
    await writeFile(cfg, stringify({ listen: { host: '127.0.0.1', port: t.port }, pasv: { minPort: t.server.config.pasv.minPort, maxPort: t.server.config.pasv.maxPort }, users: { file: join(t.dir, 'users.yaml') }, tls: { selfSignedDir: join(t.dir, 'certs') } }));
    const ok = await runCli(['doctor', '--config', cfg, '--user', 'alice'], 'alice-secret\n');
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /^PASS +data connection \(download\)/m);
    assert.match(ok.out, /^OK: no failures/m);

    const bad = await runCli(['doctor', '--config', cfg, '--user', 'alice'], 'wrong\n');
    assert.equal(bad.code, 1);
    assert.match(bad.out, /^FAIL +login +alice: 530/m);
    assert.match(bad.out, /fix: check the user name and password/);
  });
});

describe('doctor names the problem on a broken setup', () => {
  test('passive range not bindable: every port is held by another program', async () => {
    const { range, holders } = await holdSomeRange(4);
    try {
      const r = await checkPassiveRange(validate({ pasv: range }, 'test'));
      assert.equal(r.status, 'fail');
      assert.match(r.detail, /^0 of 4 ports in \d+-\d+ can be bound on 127\.0\.0\.1 \(4 EADDRINUSE\)/);
      assert.match(r.fix ?? '', /another program holds these ports/);
    } finally {
      await Promise.all(holders.map((s) => new Promise((r) => s.close(r))));
    }
    assert.notEqual((await checkPassiveRange(validate({ pasv: range }, 'test'))).status, 'fail', 'free again once released');
  });

  test('missing external address when listening on every address', () => {
    const r = checkExternalAddress(validate({ listen: { host: '0.0.0.0' } }, 'test'));
    assert.equal(r.status, 'fail');
    assert.match(r.detail, /pasv\.externalAddress is empty/);
    assert.match(r.fix ?? '', /FTPSD_PASV_EXTERNAL_ADDRESS/);
    assert.equal(checkExternalAddress(validate({ listen: { host: '192.168.1.10' } }, 'test')).status, 'fail');
    assert.equal(checkExternalAddress(validate({ listen: { host: '0.0.0.0' }, pasv: { externalAddress: '203.0.113.7' } }, 'test')).status, 'pass');
    assert.equal(checkExternalAddress(validate({ listen: { host: '127.0.0.1' } }, 'test')).status, 'pass');
  });

  test('expired certificate: in the files and as served by the running server', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ftpsd-doctor-'));
    try {
      const expired = await createSelfSignedCertificate({ names: ['localhost'], now: new Date(Date.now() - 30 * 86_400_000), validityDays: 1 });
      await writeFile(join(dir, 'expired.crt'), expired.certPem);
      await writeFile(join(dir, 'expired.key'), expired.keyPem);
      const tlsFiles: ConfigInput['tls'] = { certFile: join(dir, 'expired.crt'), keyFile: join(dir, 'expired.key'), watchIntervalMs: 0 };
      const static_ = checkCertificate(validate({ tls: tlsFiles }, 'test'), dir);
      assert.equal(byCheck(static_, 'certificate expiry')?.status, 'fail');
      assert.match(byCheck(static_, 'certificate expiry')?.detail ?? '', /^expired on /);

      const t = await startTestServer({ config: { tls: tlsFiles } });
      try {
        const live = await checkSession({ host: '127.0.0.1', port: t.port, timeoutMs: 5_000 });
        assert.equal(byCheck(live, 'AUTH TLS')?.status, 'fail');
        assert.match(byCheck(live, 'AUTH TLS')?.detail ?? '', /EXPIRED/);
      } finally {
        await t.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('server not running', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    const r = await checkSession({ host: '127.0.0.1', port, timeoutMs: 2_000 });
    assert.equal(r[0]?.status, 'fail');
    assert.match(r[0]?.fix ?? '', /start the server/);
  });

  test('session reuse failing: data connections land on a listener that does not share the control session', async () => {
    const foreign = await startForeignDataServer();
    try {
      const r = await checkSession({ host: '127.0.0.1', port: foreign.port, user: 'alice', password: 'x', timeoutMs: 5_000 });
      assert.equal(byCheck(r, 'login')?.status, 'pass');
      const upload = byCheck(r, 'data connection (upload)');
      assert.equal(upload?.status, 'fail');
      assert.match(upload?.detail ?? '', /did not resume the control TLS session/);
      assert.match(upload?.fix ?? '', /same ftpsd process/);
    } finally {
      await foreign.close();
    }
  });

  test('an invalid configuration file is the first failure', async () => {
    const r = await runDoctor({ load: () => ({ config: validate({ limits: { maxSesions: 1 } }, 'ftpsd.yaml'), file: 'x', baseDir: '.' }) });
    assert.equal(r.length, 1);
    assert.equal(r[0]?.status, 'fail');
    assert.match(r[0]?.detail ?? '', /unknown key limits\.maxSesions/);
  });
});

/** Binds every port of a small range (another one if a port is taken by someone else; bounded attempts). */
async function holdSomeRange(size: number): Promise<{ range: { minPort: number; maxPort: number }; holders: net.Server[] }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const range = passiveRange(size);
    const holders: net.Server[] = [];
    try {
      for (let p = range.minPort; p <= range.maxPort; p++) {
        const s = net.createServer();
        await new Promise<void>((resolve, reject) => s.once('error', reject).listen({ host: '127.0.0.1', port: p }, resolve));
        holders.push(s);
      }
      return { range, holders };
    } catch {
      await Promise.all(holders.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error('no free port range to occupy');
}

function runCli(args: string[], stdin: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, FTPSD_CONFIG: '' } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
    child.stdin.end(stdin);
  });
}

/**
 * A minimal explicit-FTPS server whose passive listeners are separate TLS servers with their own ticket keys, as
 * when passive ports are forwarded to another node: a client's data connection cannot resume its control session.
 */
async function startForeignDataServer(): Promise<{ port: number; close(): Promise<void> }> {
  const { certPem, keyPem } = await createSelfSignedCertificate({ names: ['localhost', '127.0.0.1'] });
  const sockets = new Set<net.Socket>();
  const dataServers = new Set<tls.Server>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined);
    let io: net.Socket = raw;
    let pending: Promise<tls.TLSSocket> | null = null;
    const reply = (line: string) => io.write(`${line}\r\n`);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        void handle(line);
      }
    };
    const handle = async (line: string) => {
      const [verb = ''] = line.split(' ');
      switch (verb.toUpperCase()) {
        case 'AUTH': {
          reply('234 AUTH TLS ok');
          raw.off('data', onData);
          const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: tls.createSecureContext({ cert: certPem, key: keyPem }) });
          secure.on('error', () => undefined);
          secure.on('data', onData);
          io = secure;
          return;
        }
        case 'USER': return reply('331 Password required');
        case 'PASS': return reply('230 Logged in');
        case 'PBSZ': case 'PROT': return reply('200 OK');
        case 'EPSV': {
          const data = tls.createServer({ cert: certPem, key: keyPem });
          dataServers.add(data);
          pending = new Promise((resolve) => data.once('secureConnection', resolve));
          await new Promise<void>((r) => data.listen(0, '127.0.0.1', r));
          return reply(`229 Entering Extended Passive Mode (|||${(data.address() as net.AddressInfo).port}|)`);
        }
        case 'STOR': case 'RETR': {
          reply('150 Opening data connection');
          const conn = await pending!;
          conn.on('error', () => undefined);
          if (verb === 'STOR') {
            conn.resume();
            await new Promise((r) => conn.once('end', r));
          }
          conn.end();
          return reply('226 Transfer complete');
        }
        case 'DELE': return reply('250 Deleted');
        case 'QUIT': reply('221 Bye'); io.end(); return;
        default: return reply('502 Not implemented');
      }
    };
    raw.on('data', onData);
    reply('220 foreign test server');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      for (const d of dataServers) d.close();
      await new Promise((r) => server.close(r));
    },
  };
}
