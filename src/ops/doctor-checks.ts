import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { resolvePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { CidrSet } from '../defender/cidr.js';
import { SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE } from '../tls/self-signed.js';
import { DOCTOR_DEFAULTS, type CheckResult } from './doctor-report.js';

const DAY_MS = 86_400_000;

/** Addresses that a client on the internet cannot reach (RFC 1918, RFC 6598 shared space, RFC 4193, link-local). */
const PRIVATE = new CidrSet(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10']);
const LOOPBACK = new CidrSet(['127.0.0.0/8', '::1/128']);

type ListenKind = 'any' | 'loopback' | 'private' | 'public' | 'name';

export function classifyListenHost(host: string): ListenKind {
  if (host === '0.0.0.0' || host === '::') return 'any';
  if (host === 'localhost') return 'loopback';
  if (net.isIP(host) === 0) return 'name';
  if (LOOPBACK.has(host)) return 'loopback';
  return PRIVATE.has(host) ? 'private' : 'public';
}

/** Behind NAT a 227 reply must name the public address, or clients connect to an address they cannot reach. */
export function checkExternalAddress(config: Config): CheckResult {
  const check = 'external address';
  const { host } = config.listen;
  const { externalAddress, addressOverrides } = config.pasv;
  const kind = classifyListenHost(host);
  if (externalAddress !== '') {
    const privateToo = PRIVATE.has(externalAddress);
    return {
      check,
      status: privateToo ? 'warn' : 'pass',
      detail: `PASV replies advertise ${externalAddress}${privateToo ? ', a private address' : ''}`,
      fix: privateToo ? 'clients outside this network cannot reach a private address: set pasv.externalAddress to the public one, or rely on EPSV' : undefined,
    };
  }
  if (kind === 'loopback') return { check, status: 'pass', detail: `listening on loopback ${host} only; no external address needed` };
  if (kind === 'public') return { check, status: 'pass', detail: `listening on public address ${host}; PASV replies advertise it` };
  if (kind === 'name') return { check, status: 'warn', detail: `listen.host is a name (${host}); cannot tell whether it is behind NAT`, fix: 'set pasv.externalAddress to the address clients reach' };
  const overrides = addressOverrides.length > 0 ? ` (${addressOverrides.length} address override(s) cover some networks)` : '';
  return {
    check,
    status: 'fail',
    detail: `listen.host ${host} is ${kind === 'any' ? 'every local address' : 'a private address'} and pasv.externalAddress is empty${overrides}: PASV replies would name a private address`,
    fix: 'set pasv.externalAddress (or FTPSD_PASV_EXTERNAL_ADDRESS) to the public IPv4 address clients connect to; clients using EPSV are not affected',
  };
}

/**
 * Binds ports of the passive range for a moment each (at most DOCTOR_DEFAULTS.maxPortsProbed, spread evenly) on the
 * address the server's passive listeners use. A port the running server holds for a transfer counts as busy.
 */
export async function checkPassiveRange(config: Config, maxProbed = DOCTOR_DEFAULTS.maxPortsProbed): Promise<CheckResult> {
  const check = 'passive ports';
  const { minPort, maxPort } = config.pasv;
  const size = maxPort - minPort + 1;
  const step = Math.max(1, Math.ceil(size / maxProbed));
  const host = config.listen.host === 'localhost' ? '127.0.0.1' : config.listen.host;
  let probed = 0;
  let free = 0;
  const errors = new Map<string, number>();
  for (let port = minPort; port <= maxPort; port += step) {
    probed++;
    const err = await tryBind(host, port);
    if (err === null) free++;
    else errors.set(err, (errors.get(err) ?? 0) + 1);
  }
  const range = `${minPort}-${maxPort}`;
  const why = [...errors].map(([code, n]) => `${n} ${code}`).join(', ');
  const detail = `${free} of ${probed} ${step > 1 ? 'sampled ' : ''}ports in ${range} can be bound on ${host}${why !== '' ? ` (${why})` : ''}`;
  if (free === 0) {
    const fix = errors.has('EACCES')
      ? 'ports below 1024 need privileges: choose a range such as 50000-50100'
      : errors.has('EADDRNOTAVAIL')
        ? `listen.host ${host} is not an address of this machine`
        : `another program holds these ports: find it with \`ss -ltnp 'sport >= ${minPort} and sport <= ${maxPort}'\`, or move pasv.minPort/pasv.maxPort to a free range`;
    return { check, status: 'fail', detail, fix };
  }
  if (free * 2 < probed) {
    return { check, status: 'warn', detail, fix: 'fewer than half the ports are free: widen pasv.minPort..pasv.maxPort or free the ports (each running transfer holds one)' };
  }
  return { check, status: 'pass', detail };
}

function tryBind(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

interface CertificateFiles {
  certPem: string;
  keyPem: string;
  origin: string;
}

/** The files the server would load, without creating anything (a missing self-signed pair is made at start). */
function locateCertificate(config: Config, baseDir: string): CertificateFiles | { missing: string } {
  const abs = (p: string) => resolvePath(baseDir, p);
  let certFile: string;
  let keyFile: string;
  if (config.tls.certFile !== '') {
    certFile = abs(config.tls.certFile);
    keyFile = abs(config.tls.keyFile);
  } else if (config.acme.enabled) {
    certFile = join(abs(config.acme.dir), 'cert.pem');
    keyFile = join(abs(config.acme.dir), 'cert.key');
  } else {
    certFile = join(abs(config.tls.selfSignedDir), SELF_SIGNED_CERT_FILE);
    keyFile = join(abs(config.tls.selfSignedDir), SELF_SIGNED_KEY_FILE);
  }
  if (!existsSync(certFile)) return { missing: certFile };
  return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8'), origin: certFile };
}

/** Names, key, chain and validity of the certificate the configuration points at. */
export function checkCertificate(config: Config, baseDir: string, now = Date.now()): CheckResult[] {
  const check = 'certificate';
  let files: CertificateFiles | { missing: string };
  try {
    files = locateCertificate(config, baseDir);
  } catch (err) {
    return [{ check, status: 'fail', detail: `cannot read the certificate or key: ${(err as Error).message}`, fix: 'check tls.certFile/tls.keyFile and that the server user may read them' }];
  }
  if ('missing' in files) {
    const selfSigned = config.tls.certFile === '' && !config.acme.enabled;
    return [
      {
        check,
        status: selfSigned ? 'warn' : 'fail',
        detail: `${files.missing} does not exist${selfSigned ? ' yet; a self-signed certificate is generated at first start' : ''}`,
        fix: selfSigned ? 'start the server once (ftpsd serve), or configure tls.certFile/tls.keyFile or ACME' : 'check tls.certFile, or let ACME obtain a certificate first',
      },
    ];
  }
  return judgeCertificate(files.certPem, files.keyPem, config, now, files.origin);
}

export function judgeCertificate(certPem: string, keyPem: string | null, config: Config, now: number, origin: string): CheckResult[] {
  const out: CheckResult[] = [];
  let chain: X509Certificate[];
  try {
    chain = splitPem(certPem).map((p) => new X509Certificate(p));
  } catch (err) {
    return [{ check: 'certificate', status: 'fail', detail: `${origin} is not a PEM certificate: ${(err as Error).message}`, fix: 'put the PEM certificate (leaf first, then intermediates) in the file' }];
  }
  const leaf = chain[0];
  if (leaf === undefined) return [{ check: 'certificate', status: 'fail', detail: `${origin} holds no certificate`, fix: 'put the PEM certificate (leaf first, then intermediates) in the file' }];

  if (keyPem !== null) {
    let matches = false;
    try {
      matches = leaf.checkPrivateKey(createPrivateKey(keyPem));
    } catch {
      matches = false;
    }
    if (!matches) out.push({ check: 'certificate key', status: 'fail', detail: 'the private key does not belong to the certificate (or cannot be read)', fix: 'set tls.keyFile to the key the certificate was issued for' });
  }

  const notAfter = Date.parse(leaf.validTo);
  const daysLeft = Math.floor((notAfter - now) / DAY_MS);
  const validity = `valid until ${new Date(notAfter).toISOString()}`;
  if (notAfter <= now) {
    out.push({ check: 'certificate expiry', status: 'fail', detail: `expired on ${new Date(notAfter).toISOString()}`, fix: 'renew it: enable ACME, replace tls.certFile/keyFile and send SIGHUP, or delete the self-signed pair and restart to get a new one' });
  } else if (Date.parse(leaf.validFrom) > now) {
    out.push({ check: 'certificate expiry', status: 'fail', detail: `not valid before ${new Date(leaf.validFrom).toISOString()}`, fix: "check this machine's clock" });
  } else if (daysLeft < DOCTOR_DEFAULTS.certificateWarnDays) {
    out.push({ check: 'certificate expiry', status: 'warn', detail: `${validity}: ${daysLeft} days left`, fix: 'renew it soon (ACME renews automatically when acme.enabled)' });
  } else {
    out.push({ check: 'certificate expiry', status: 'pass', detail: `${validity}: ${daysLeft} days left` });
  }

  const names = (leaf.subjectAltName ?? '').split(', ').filter((s) => s !== '').map((s) => s.replace(/^(DNS|IP Address):/, ''));
  const wanted = wantedNames(config);
  const missing = wanted.filter((n) => !covers(leaf, n));
  out.push(
    missing.length === 0
      ? { check: 'certificate names', status: 'pass', detail: names.length > 0 ? names.join(', ') : leaf.subject.replace(/\n/g, ', ') }
      : { check: 'certificate names', status: 'fail', detail: `${names.join(', ') || '(no subjectAltName)'}; missing ${missing.join(', ')}`, fix: 'issue the certificate for every name clients use (acme.domains, tls.selfSignedNames)' },
  );

  out.push(judgeChain(chain));
  return out;
}

function wantedNames(config: Config): string[] {
  if (config.tls.certFile !== '') return config.acme.enabled ? config.acme.domains : [];
  if (config.acme.enabled) return config.acme.domains;
  return config.tls.selfSignedNames;
}

function covers(leaf: X509Certificate, name: string): boolean {
  if (net.isIP(name) !== 0) return leaf.checkIP(name) !== undefined;
  if (name.startsWith('*.')) return (leaf.subjectAltName ?? '').toLowerCase().split(', ').includes(`dns:${name.toLowerCase()}`);
  return leaf.checkHost(name) !== undefined;
}

function judgeChain(chain: X509Certificate[]): CheckResult {
  const check = 'certificate chain';
  for (let i = 0; i + 1 < chain.length; i++) {
    const [child, parent] = [chain[i]!, chain[i + 1]!];
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      return { check, status: 'fail', detail: `certificate ${i + 1} is not signed by certificate ${i + 2} in the file`, fix: 'order the file leaf first, then each issuer (fullchain.pem)' };
    }
  }
  const top = chain[chain.length - 1]!;
  // checkIssued() also wants keyCertSign, which a self-signed server certificate rightly lacks: compare names.
  if (top.subject === top.issuer && top.verify(top.publicKey)) {
    if (chain.length === 1) {
      return { check, status: 'warn', detail: `self-signed (SHA-256 fingerprint ${top.fingerprint256})`, fix: 'partners must accept or pin this fingerprint; use ACME (acme.enabled) or a CA certificate so clients verify it' };
    }
    return { check, status: 'pass', detail: `${chain.length} certificates ending in a root` };
  }
  const root = tls.rootCertificates.map((p) => new X509Certificate(p)).find((r) => top.checkIssued(r) && top.verify(r.publicKey));
  if (root !== undefined) return { check, status: 'pass', detail: `${chain.length} certificate(s), issued under ${root.subject.split('\n').find((l) => l.startsWith('CN=')) ?? 'a public root'}` };
  return {
    check,
    status: 'warn',
    detail: `issuer "${top.issuer.replace(/\n/g, ', ')}" is not in the file nor a public root`,
    fix: 'append the intermediate certificates to tls.certFile (fullchain.pem); a private CA must be given to partners',
  };
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
