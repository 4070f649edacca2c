import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import type { InstalledCertificate } from '../../src/tls/cert-store.js';
import { runCurl, runProcess } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { type Pebble, acmeTestSettings, chainVerifies, splitPem, startPebble } from '../helpers/pebble.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

// The ACME module wired into the real server, against a real pebble: the certificate it orders is the one a real
// FTPS client sees in the AUTH TLS handshake (RFC 4217 §4), verified against pebble's root; a restart reuses what is
// stored; `ftpsd cert status` describes it.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');
const fixtureHook = new URL('../fixtures/dns-hook.sh', import.meta.url);
const USER = 'alice';
const PASSWORD = 'alice-acme-pw';
/** An order against a local pebble takes well under a second; this bounds a hang. */
const INSTALL_TIMEOUT_MS = 15_000;

/** Resolves with the ACME certificate once the server installed it, or fails after INSTALL_TIMEOUT_MS. */
async function acmeInstalled(t: TestServer): Promise<InstalledCertificate> {
  const acme = t.server.acme;
  assert.ok(acme !== null, 'the server runs ACME');
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      acme.installed(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no ACME certificate within ${INSTALL_TIMEOUT_MS} ms: ${JSON.stringify(acme.status())}`)), INSTALL_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function dnsNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4)).sort();
}

describe('ftpsd serving ACME certificates from pebble', () => {
  let pebble: Pebble;
  let work: string;
  let rootFile: string;
  const servers: TestServer[] = [];
  const clients: ControlClient[] = [];

  before(async () => {
    pebble = await startPebble();
    work = await mkdtemp(join(tmpdir(), 'ftpsd-acme-server-'));
    rootFile = join(work, 'pebble-root.pem');
    await writeFile(rootFile, pebble.rootPem);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.close()));
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function startAcmeServer(acmeDir: string, acme: Partial<NonNullable<ConfigInput['acme']>> = {}): Promise<TestServer> {
    const t = await startTestServer({
      users: [{ name: USER, password: PASSWORD }],
      config: { acme: { ...acmeTestSettings(pebble, join(work, acmeDir)), ...acme } },
    });
    servers.push(t);
    return t;
  }

  /** AUTH TLS verifying the chain against pebble's root and the host name; returns the certificate presented. */
  async function handshake(t: TestServer, servername: string): Promise<{ client: ControlClient; peer: X509Certificate }> {
    const client = await ControlClient.connect(t.port);
    clients.push(client);
    assert.equal((await client.read())?.code, 220);
    const r = await client.authTls({ ca: pebble.rootPem, rejectUnauthorized: true, servername });
    assert.equal(r.code, 234, r.text);
    const socket = client.socket as TLSSocket;
    assert.equal(socket.authorized, true, `handshake verified against pebble's root: ${String(socket.authorizationError)}`);
    const peer = socket.getPeerX509Certificate();
    assert.ok(peer !== undefined);
    return { client, peer };
  }

  /** Pebble logs "There are now N orders in the db" after each new order. */
  function ordersInPebble(): number {
    return Number([...pebble.output().matchAll(/There are now (\d+) orders in the db/g)].at(-1)?.[1] ?? 0);
  }

  let httpServer: TestServer;
  let httpCert: InstalledCertificate;

  it('HTTP-01: the server orders a certificate and presents it in the AUTH TLS handshake', async (t) => {
    const started = Date.now();
    httpServer = await startAcmeServer('http', { domains: ['ftps.test', 'files.ftps.test'] });
    const listeningMs = Date.now() - started;
    httpCert = await acmeInstalled(httpServer);
    const issuedMs = Date.now() - started;

    assert.equal(httpServer.server.certStore.current().source, 'acme');
    assert.ok(chainVerifies(httpCert.certPem, pebble.rootPem), 'stored chain verifies against pebble root');
    const issued = httpServer.logs().filter((l) => l.msg === 'acme certificate issued');
    assert.equal(issued.length, 1);
    assert.equal(issued[0]?.trigger, 'initial');
    assert.deepEqual(httpServer.logs().filter((l) => l.msg === 'acme challenge answered').map((l) => l.type), ['http-01', 'http-01']);

    // Node's TLS client: serial and names of the certificate in the handshake.
    const { client, peer } = await handshake(httpServer, 'files.ftps.test');
    assert.equal(peer.serialNumber, httpCert.leaf.serialNumber);
    assert.deepEqual(dnsNames(peer), ['files.ftps.test', 'ftps.test']);
    assert.match(peer.issuer, /^CN=Pebble Intermediate CA /);
    await client.send('PBSZ 0');
    await client.send('PROT P');
    await client.send(`USER ${USER}`);
    assert.equal((await client.send(`PASS ${PASSWORD}`)).code, 230);

    // OpenSSL's client: STARTTLS for FTP is AUTH TLS; it verifies the chain and the name, and prints the certificate.
    const ossl = await runProcess('openssl', [
      's_client', '-starttls', 'ftp', '-connect', `127.0.0.1:${httpServer.port}`, '-servername', 'ftps.test',
      '-CAfile', rootFile, '-verify_return_error', '-verify_hostname', 'ftps.test',
    ], { input: 'QUIT\r\n', timeoutMs: 10_000 });
    assert.match(ossl.stdout, /Verify return code: 0 \(ok\)/, ossl.stdout + ossl.stderr);
    const [osslPem] = splitPem(ossl.stdout);
    assert.ok(osslPem !== undefined, 'openssl printed the server certificate');
    assert.equal(new X509Certificate(osslPem).serialNumber, httpCert.leaf.serialNumber);

    // curl: FTPS with a verified certificate and host name (no -k), a directory listing, and the certificate's serial.
    const curl = await runCurl([
      '-v', '--ssl-reqd', '--cacert', rootFile, '--resolve', `files.ftps.test:${httpServer.port}:127.0.0.1`,
      '--user', `${USER}:${PASSWORD}`, '-w', '%{certs}', `ftp://files.ftps.test:${httpServer.port}/`,
    ]);
    assert.equal(curl.code, 0, curl.stderr);
    assert.match(curl.stderr, /SSL certificate verify ok/);
    assert.match(curl.stderr, /subjectAltName: host "files\.ftps\.test" matched cert's "files\.ftps\.test"/);
    const serialLine = /^Serial Number:\s*([0-9a-f:]+)$/im.exec(curl.stdout);
    assert.ok(serialLine !== null, `curl -w %{certs} shows the serial:\n${curl.stdout}`);
    assert.equal(BigInt(`0x${serialLine[1]!.replace(/:/g, '')}`), BigInt(`0x${httpCert.leaf.serialNumber}`));

    t.diagnostic(`server listening after ${listeningMs} ms, ACME certificate installed ${issuedMs} ms after start (order ${String(issued[0]?.ms)} ms)`);
  });

  it('DNS-01 through the hook: a name and its wildcard, presented for any host under it', async (t) => {
    const hook = join(work, 'dns-hook.sh');
    await copyFile(fixtureHook, hook);
    await chmod(hook, 0o755);
    // The hook runs as a child of this process and finds challtestsrv here.
    process.env.CHALLTESTSRV_URL = pebble.challtestsrvUrl;
    const started = Date.now();
    const srv = await startAcmeServer('dns', { domains: ['dns.ftps.test', '*.dns.ftps.test'], challenges: ['dns-01'], dns01: { hook } });
    const cert = await acmeInstalled(srv);
    const ms = Date.now() - started;
    assert.ok(chainVerifies(cert.certPem, pebble.rootPem));
    assert.ok(srv.logs().some((l) => l.msg === 'acme challenge answered' && l.type === 'dns-01'));

    const { peer } = await handshake(srv, 'partner.dns.ftps.test');
    assert.equal(peer.serialNumber, cert.leaf.serialNumber);
    assert.deepEqual(dnsNames(peer), ['*.dns.ftps.test', 'dns.ftps.test']);
    await srv.close();
    t.diagnostic(`DNS-01 certificate installed ${ms} ms after start`);
  });

  it('TLS-ALPN-01: the server orders through its acme-tls/1 listener and presents the certificate', async (t) => {
    const started = Date.now();
    const srv = await startAcmeServer('alpn', { domains: ['alpn.ftps.test'], challenges: ['tls-alpn-01'] });
    const cert = await acmeInstalled(srv);
    const ms = Date.now() - started;
    assert.ok(chainVerifies(cert.certPem, pebble.rootPem));
    assert.ok(srv.logs().some((l) => l.msg === 'acme challenge answered' && l.type === 'tls-alpn-01'));

    const { peer } = await handshake(srv, 'alpn.ftps.test');
    assert.equal(peer.serialNumber, cert.leaf.serialNumber);
    assert.deepEqual(dnsNames(peer), ['alpn.ftps.test']);
    await srv.close();
    t.diagnostic(`TLS-ALPN-01 certificate installed ${ms} ms after start`);
  });

  it('a restart on the same acme.dir serves the stored certificate without a new order', async () => {
    assert.ok(httpCert !== undefined, 'needs the HTTP-01 server');
    await httpServer.close();
    const ordersBefore = ordersInPebble();
    assert.ok(ordersBefore >= 1, 'pebble reports the orders it holds');

    const restarted = await startAcmeServer('http', { domains: ['ftps.test', 'files.ftps.test'] });
    // start() installs a stored certificate before it returns: no wait, no self-signed interval.
    assert.equal(restarted.server.certStore.current().source, 'acme');
    const cert = await acmeInstalled(restarted);
    assert.equal(cert.leaf.serialNumber, httpCert.leaf.serialNumber);
    const { peer } = await handshake(restarted, 'ftps.test');
    assert.equal(peer.serialNumber, httpCert.leaf.serialNumber);

    const logs = restarted.logs();
    assert.equal(logs.filter((l) => l.msg === 'acme order created').length, 0, 'no order on restart');
    assert.deepEqual(logs.filter((l) => l.msg === 'acme certificate installed').map((l) => l.from), ['store']);
    assert.equal(ordersInPebble(), ordersBefore, 'pebble received no new order');
  });

  it('`ftpsd cert status` prints subject, names, issuer, serial, not-after and days left of the stored certificate', async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/ is missing: build with npx tsc -p tsconfig.json');
    const configFile = join(work, 'ftpsd.yaml');
    await writeFile(configFile, stringify({
      tls: { selfSignedDir: join(work, 'self-signed') },
      acme: { ...acmeTestSettings(pebble, join(work, 'http')), domains: ['ftps.test', 'files.ftps.test'] },
    }));
    const r = await runProcess(process.execPath, [BIN, 'cert', 'status', '--config', configFile], { cwd: work, env: { FTPSD_CONFIG: '' }, timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);

    const leaf = httpCert.leaf;
    const notAfter = new Date(leaf.validTo);
    const daysLeft = Math.floor((notAfter.getTime() - Date.now()) / 86_400_000);
    assert.match(r.stdout, new RegExp(`^source: +acme \\(${join(work, 'http').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`, 'm'));
    assert.match(r.stdout, new RegExp(`^subject: +${leaf.subject.replace(/\n/g, ', ').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(r.stdout, /^names: +ftps\.test, files\.ftps\.test$|^names: +files\.ftps\.test, ftps\.test$/m);
    assert.match(r.stdout, /^issuer: +CN=Pebble Intermediate CA \S+$/m);
    assert.match(r.stdout, new RegExp(`^serial: +${leaf.serialNumber}$`, 'm'));
    const notAfterLine = /^not after: +(\S+) \((\d+) days left\)$/m.exec(r.stdout);
    assert.ok(notAfterLine !== null, r.stdout);
    assert.equal(notAfterLine[1], notAfter.toISOString());
    // Pebble's default lifetime is five years; the day count may tick over between the two readings.
    assert.ok(Math.abs(Number(notAfterLine[2]) - daysLeft) <= 1, `days left ${notAfterLine[2]} vs ${daysLeft}`);
    assert.ok(daysLeft > 1_800);
  });
});
