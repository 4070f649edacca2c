import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ConfigInput } from '../../src/config/schema.js';

/**
 * Pebble (the ACME test CA) plus pebble-challtestsrv (its fake DNS: every name resolves to 127.0.0.1) on free
 * loopback ports, for tests that run real orders. Each start has a new random root: use `rootPem` of this run.
 */
export interface PebbleOptions {
  /** Lifetime of issued certificates in seconds; pebble's default is 5 years. */
  certificateValidityPeriodSeconds?: number;
  /** Port pebble's VA connects to for HTTP-01 / TLS-ALPN-01; a free one when not given. */
  httpPort?: number;
  tlsPort?: number;
  /** EAB key ids and base64url HMAC keys; when set, pebble requires external account binding. */
  eabKeys?: Record<string, string>;
  /** How long to wait for both servers to answer. */
  readyTimeoutMs?: number;
}

export interface Pebble {
  directoryUrl: string;
  /** CA file for pebble's own HTTPS listeners (what acme.caFile must point at). */
  caFile: string;
  /** The root that signs issued certificates (GET /roots/0 on the management port). */
  rootPem: string;
  httpPort: number;
  tlsPort: number;
  dnsPort: number;
  /** challtestsrv's management API (POST /set-txt, /clear-txt, ...). */
  challtestsrvUrl: string;
  dir: string;
  /** Output of both processes so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const OUTPUT_LIMIT_CHARS = 64 * 1024;
const POLL_INTERVAL_MS = 50;
const STOP_TIMEOUT_MS = 3_000;

export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-pebble-'));
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  makePebbleTlsCert(dir);
  const caFile = join(dir, 'ca.pem');
  const caPem = await readFile(caFile, 'utf8');
  const [acmePort, mgmtPort, dnsPort, challMgmtPort] = [await freePort(), await freePort(), await freeUdpTcpPort(), await freePort()];
  const httpPort = options.httpPort ?? (await freePort());
  const tlsPort = options.tlsPort ?? (await freePort());

  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: join(dir, 'localhost.pem'),
      privateKey: join(dir, 'localhost.key'),
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: options.eabKeys !== undefined,
      externalAccountMACKeys: options.eabKeys ?? {},
      ...(options.certificateValidityPeriodSeconds === undefined ? {} : { certificateValidityPeriod: options.certificateValidityPeriodSeconds }),
    },
  };
  await writeFile(join(dir, 'pebble-config.json'), JSON.stringify(config, null, 2));

  let output = '';
  const collect = (name: string) => (chunk: Buffer) => {
    output = `${output}[${name}] ${chunk.toString()}`.slice(-OUTPUT_LIMIT_CHARS);
  };
  const children: ChildProcess[] = [];
  const launch = (name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn(cmd, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', collect(name));
    child.stderr?.on('data', collect(name));
    child.on('error', (err) => collect(name)(Buffer.from(`spawn error: ${err.message}\n`)));
    children.push(child);
    return child;
  };

  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => stopChild(c)));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    launch('challtestsrv', 'pebble-challtestsrv', [
      '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
      '-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${challMgmtPort}`,
      // Its own HTTP-01/TLS-ALPN-01 servers would bind all interfaces and shadow the responders under test.
      '-http01', '', '-https01', '', '-tlsalpn01', '',
    ], {});
    launch('pebble', 'pebble', ['-config', join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
      // No random 0-15 s sleep before validations, no random nonce rejection, no authorization reuse.
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
    });
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const deadline = Date.now() + readyTimeoutMs;
    // Pebble logs "directory available" before it binds, so readiness is an answered request.
    await pollUntil(() => httpsGet(directoryUrl, caPem).then(() => true), deadline, () => output, children);
    const challtestsrvUrl = `http://127.0.0.1:${challMgmtPort}`;
    await pollUntil(() => fetch(`${challtestsrvUrl}/clear-request-history`, { method: 'POST', body: '{"host":"x","type":"dns"}' }).then(() => true), deadline, () => output, children);
    const rootPem = await httpsGet(`https://127.0.0.1:${mgmtPort}/roots/0`, caPem);
    return { directoryUrl, caFile, rootPem, httpPort, tlsPort, dnsPort, challtestsrvUrl, dir, output: () => output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A CA and a localhost/127.0.0.1 certificate for pebble's HTTPS listeners (Debian's package ships none). */
function makePebbleTlsCert(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '30', '-subj', '/CN=ftpsd test pebble CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'localhost.key', '-out', 'localhost.csr', '-subj', '/CN=localhost');
  execFileSync('sh', ['-c', "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n' > ext.cnf"], { cwd: dir });
  openssl('x509', '-req', '-in', 'localhost.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'localhost.pem', '-days', '30', '-extfile', 'ext.cnf');
}

async function pollUntil(probe: () => Promise<boolean>, deadline: number, output: () => string, children: ChildProcess[]): Promise<void> {
  let lastError: unknown;
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead !== undefined) throw new Error(`${dead.spawnfile} exited early:\n${output()}`);
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await delay(POLL_INTERVAL_MS);
  }
  throw new Error(`pebble not ready: ${(lastError as Error | undefined)?.message ?? 'timeout'}\n${output()}`);
}

export function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { ca, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** DNS listens on UDP and TCP of the same port: find one free for both. */
async function freeUdpTcpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    const socket = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (ok) return port;
  }
  throw new Error('no free UDP+TCP port');
}

/** Settings that make orders against a local pebble fast: quick polling, one quick retry of network errors. */
export function acmeTestSettings(pebble: Pebble, dir: string): NonNullable<ConfigInput['acme']> {
  return {
    enabled: true,
    directoryUrl: pebble.directoryUrl,
    termsAgreed: true,
    email: 'ops@ftps.test',
    domains: ['ftps.test'],
    challenges: ['http-01'],
    http01: { host: '127.0.0.1', port: pebble.httpPort },
    tlsAlpn01: { host: '127.0.0.1', port: pebble.tlsPort },
    caFile: pebble.caFile,
    dir,
    pollIntervalMinMs: 50,
    pollIntervalMaxMs: 500,
    requestRetries: 1,
    requestRetryDelayMs: 100,
    challengeTimeoutMs: 20_000,
    retryMinMs: 300,
    retryMaxMs: 2_000,
  };
}

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino destination that keeps every record, for assertions on log events. */
export function logCapture(): { stream: { write(line: string): void }; records: LogRecord[]; events(msg: string): LogRecord[] } {
  const records: LogRecord[] = [];
  return {
    stream: { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) },
    records,
    events: (msg: string) => records.filter((r) => r.msg === msg),
  };
}

/** Splits a PEM chain into certificates. */
export function splitPem(chainPem: string): string[] {
  return chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Whether leaf, intermediates and the given root form a chain where each certificate is signed by the next. */
export function chainVerifies(chainPem: string, rootPem: string): boolean {
  const certs = [...splitPem(chainPem), rootPem].map((p) => new X509Certificate(p));
  if (certs.length < 2) return false;
  return certs.slice(0, -1).every((cert, i) => {
    const issuer = certs[i + 1]!;
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  });
}
