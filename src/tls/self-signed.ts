import { X509Certificate, createHash, createPrivateKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { domainToASCII } from 'node:url';
import { promisify } from 'node:util';
import forge from 'node-forge';
import type { Logger } from '../log/logger.js';
import type { CertificatePair } from './cert-store.js';

/** Lifetimes of the generated certificate, in one place. */
export const SELF_SIGNED_DEFAULTS = Object.freeze({
  /** 825 days: the longest lifetime browsers and TLS libraries have accepted for a server certificate. */
  validityDays: 825,
  /** A certificate that expires sooner than this is replaced at start-up. */
  renewBeforeDays: 30,
  /** notBefore is set this far back so clients whose clock runs a little behind accept it at once. */
  backdateMs: 3_600_000,
});

export const SELF_SIGNED_CERT_FILE = 'self-signed.crt';
export const SELF_SIGNED_KEY_FILE = 'self-signed.key';

export type SelfSignedErrorReason = 'no_names' | 'invalid_name' | 'store';

export class SelfSignedCertificateError extends Error {
  readonly reason: SelfSignedErrorReason;

  constructor(reason: SelfSignedErrorReason, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SelfSignedCertificateError';
    this.reason = reason;
  }
}

/** Why a stored pair is not reused. */
export type ReplaceReason = 'unreadable' | 'key_mismatch' | 'expiring' | 'not_yet_valid' | 'names_changed';

export interface SelfSignedOptions {
  dir: string;
  /** DNS names and IP addresses; the first also becomes the subject's CN. */
  names: string[];
  log?: Logger;
  now?: Date;
  validityDays?: number;
  renewBeforeDays?: number;
}

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const DIR_MODE = 0o700;
const DAY_MS = 86_400_000;

/**
 * Returns the self-signed pair stored in `dir`, generating (or replacing) it when it is missing, unreadable, does
 * not match its key, expires soon, or was made for other names.
 */
export async function ensureSelfSignedCertificate(opts: SelfSignedOptions): Promise<CertificatePair> {
  const now = opts.now ?? new Date();
  const names = normaliseNames(opts.names);
  const certFile = join(opts.dir, SELF_SIGNED_CERT_FILE);
  const keyFile = join(opts.dir, SELF_SIGNED_KEY_FILE);
  const renewBeforeDays = opts.renewBeforeDays ?? SELF_SIGNED_DEFAULTS.renewBeforeDays;

  const stored = await readStored(certFile, keyFile);
  if (stored !== null) {
    const verdict = judgeStored(stored, names, now, renewBeforeDays);
    if (verdict.kind === 'reuse') {
      opts.log?.info(
        { certFile, fingerprint256: verdict.leaf.fingerprint256, notAfter: new Date(verdict.leaf.validTo).toISOString() },
        'self-signed certificate loaded',
      );
      return { ...stored, source: 'self-signed' };
    }
    opts.log?.warn({ certFile, reason: verdict.reason }, 'self-signed certificate replaced');
  }

  const pair = await createSelfSignedCertificate({ names: opts.names, now, validityDays: opts.validityDays });
  try {
    await mkdir(opts.dir, { recursive: true, mode: DIR_MODE });
    // Key first: a crash between the two renames leaves a key that does not match the old certificate, which the
    // next start detects (key_mismatch) and repairs.
    await writeAtomically(keyFile, pair.keyPem, KEY_MODE);
    await writeAtomically(certFile, pair.certPem, CERT_MODE);
  } catch (err) {
    throw new SelfSignedCertificateError('store', `cannot write the self-signed certificate to ${opts.dir}`, { cause: err });
  }
  const leaf = new X509Certificate(pair.certPem);
  opts.log?.info(
    { certFile, fingerprint256: leaf.fingerprint256, notAfter: new Date(leaf.validTo).toISOString() },
    'self-signed certificate generated',
  );
  return { ...pair, source: 'self-signed' };
}

/**
 * Builds an ECDSA P-256 self-signed server certificate in memory. node-forge cannot create or sign EC keys, so
 * node:crypto makes the key and the signature and forge's ASN.1 encoder assembles the X.509 v3 structure
 * (RFC 5280 section 4.1).
 */
export async function createSelfSignedCertificate(opts: {
  names: string[];
  now?: Date;
  validityDays?: number;
}): Promise<{ keyPem: string; certPem: string }> {
  const names = normaliseNames(opts.names);
  const now = (opts.now ?? new Date()).getTime();
  const validityDays = opts.validityDays ?? SELF_SIGNED_DEFAULTS.validityDays;
  const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });

  const name = subjectName(names[0]!.text);
  const tbs = seq([
    explicit(0, [integer(Buffer.from([2]))]), // version v3
    integer(randomSerial()),
    ECDSA_WITH_SHA256,
    name,
    seq([time(new Date(now - SELF_SIGNED_DEFAULTS.backdateMs)), time(new Date(now + validityDays * DAY_MS))]),
    name,
    forge.asn1.fromDer(toBytes(publicKey.export({ type: 'spki', format: 'der' }))),
    explicit(3, [seq(serverExtensions(names, publicKey))]),
  ]);
  const tbsDer = fromBytes(forge.asn1.toDer(tbs).getBytes());
  // node:crypto emits the DER Ecdsa-Sig-Value that RFC 5758 section 3.2 asks for.
  const signature = sign('sha256', tbsDer, privateKey);
  const certificate = seq([tbs, ECDSA_WITH_SHA256, bitString(signature)]);

  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: pem('CERTIFICATE', fromBytes(forge.asn1.toDer(certificate).getBytes())),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Stored pair

type Verdict = { kind: 'reuse'; leaf: X509Certificate } | { kind: 'replace'; reason: ReplaceReason };

async function readStored(certFile: string, keyFile: string): Promise<{ keyPem: string; certPem: string } | null> {
  try {
    const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { certPem, keyPem };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // Any other failure (permissions, a directory in the way) is the operator's to fix: never overwrite blindly.
    throw new SelfSignedCertificateError('store', `cannot read the self-signed certificate in ${dirname(certFile)}`, { cause: err });
  }
}

function judgeStored(stored: { keyPem: string; certPem: string }, names: SanName[], now: Date, renewBeforeDays: number): Verdict {
  let leaf: X509Certificate;
  let key: KeyObject;
  try {
    leaf = new X509Certificate(stored.certPem);
    key = createPrivateKey(stored.keyPem);
  } catch {
    return { kind: 'replace', reason: 'unreadable' };
  }
  if (!leaf.checkPrivateKey(key)) return { kind: 'replace', reason: 'key_mismatch' };
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) return { kind: 'replace', reason: 'unreadable' };
  if (notBefore > now.getTime()) return { kind: 'replace', reason: 'not_yet_valid' };
  if (notAfter - now.getTime() < renewBeforeDays * DAY_MS) return { kind: 'replace', reason: 'expiring' };
  if (!sameNames(leaf, names)) return { kind: 'replace', reason: 'names_changed' };
  return { kind: 'reuse', leaf };
}

/** Compares the certificate's SAN entries with the configured names, as sets. */
function sameNames(leaf: X509Certificate, names: SanName[]): boolean {
  const wanted = new Set(names.map(sanKey));
  const present = new Set<string>();
  for (const entry of (leaf.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) present.add(`dns:${entry.slice(4).toLowerCase()}`);
    else if (entry.startsWith('IP Address:')) {
      const bytes = ipToBytes(entry.slice(11));
      if (bytes === null) return false;
      present.add(`ip:${bytes.toString('hex')}`);
    } else if (entry !== '') return false;
  }
  return present.size === wanted.size && [...wanted].every((k) => present.has(k));
}

async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      // The umask may have narrowed or widened nothing we rely on: set the mode explicitly.
      await fh.chmod(mode);
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Names

type SanName = { kind: 'dns'; text: string } | { kind: 'ip'; text: string; bytes: Buffer };

function normaliseNames(input: string[]): SanName[] {
  const out: SanName[] = [];
  const seen = new Set<string>();
  for (const raw of input) {
    const name = raw.trim();
    const entry = toSanName(name);
    const key = sanKey(entry);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(entry);
  }
  if (out.length === 0) throw new SelfSignedCertificateError('no_names', 'a self-signed certificate needs at least one name');
  return out;
}

function toSanName(name: string): SanName {
  if (isIP(name) !== 0) {
    const bytes = ipToBytes(name);
    if (bytes === null) throw new SelfSignedCertificateError('invalid_name', `not usable as a certificate IP address: ${name}`);
    return { kind: 'ip', text: name, bytes };
  }
  // RFC 5280 section 4.2.1.6: dNSName is an IA5String in the "preferred name syntax"; IDNs go in as A-labels.
  const ascii = name === '' ? '' : domainToASCII(name.toLowerCase());
  if (ascii === '' || !/^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/.test(ascii)) {
    throw new SelfSignedCertificateError('invalid_name', `not usable as a certificate DNS name: ${JSON.stringify(name)}`);
  }
  return { kind: 'dns', text: ascii };
}

function sanKey(n: SanName): string {
  return n.kind === 'ip' ? `ip:${n.bytes.toString('hex')}` : `dns:${n.text}`;
}

/** The 4 or 16 bytes an iPAddress GeneralName holds (RFC 5280 section 4.2.1.6); null for anything else. */
export function ipToBytes(ip: string): Buffer | null {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  // A zone index names an interface of this host; it has no meaning in a certificate.
  if (family !== 6 || ip.includes('%')) return null;
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  const head = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? (halves[1] ?? '').split(':') : [];
  const groups = halves.length === 2 ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// ASN.1 pieces (DER, RFC 5280)

const { Class, Type } = forge.asn1;
const generateKeyPairAsync = promisify(generateKeyPair);

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
} as const;

/** The product's name in the subject tells an operator where the certificate came from. */
const ORGANIZATION = 'ftpsd self-signed';
/** RFC 5280 appendix A: ub-common-name. */
const MAX_COMMON_NAME_CHARS = 64;

type Asn1 = forge.asn1.Asn1;

function seq(items: Asn1[]): Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, items);
}

function explicit(tag: number, items: Asn1[]): Asn1 {
  return forge.asn1.create(Class.CONTEXT_SPECIFIC, tag as forge.asn1.Type, true, items);
}

function integer(unsignedBigEndian: Buffer): Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.INTEGER, false, toBytes(unsignedBigEndian));
}

function oid(dotted: string): Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.OID, false, forge.asn1.oidToDer(dotted).getBytes());
}

function bitString(bytes: Buffer): Asn1 {
  // Leading octet: the number of unused bits in the last octet (none).
  return forge.asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${toBytes(bytes)}`);
}

/** RFC 5758 section 3.2: ecdsa-with-SHA256 with the parameters field absent. */
const ECDSA_WITH_SHA256 = seq([oid(OID.ecdsaWithSha256)]);

/** RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? forge.asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, forge.asn1.dateToUtcTime(date))
    : forge.asn1.create(Class.UNIVERSAL, Type.GENERALIZEDTIME, false, forge.asn1.dateToGeneralizedTime(date));
}

/** RFC 5280 section 4.1.2.2: positive, at most 20 octets; 16 random octets with the top bit clear and the next set,
 * so the DER INTEGER is always exactly 16 octets. */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

function subjectName(firstName: string): Asn1 {
  // forge UTF-8-encodes values tagged UTF8String itself (RFC 5280 section 4.1.2.4 prefers UTF8String).
  const utf8 = Type.UTF8 as unknown as forge.asn1.Class;
  return forge.pki.distinguishedNameToAsn1({
    attributes: [
      { type: OID.commonName, value: firstName.slice(0, MAX_COMMON_NAME_CHARS), valueTagClass: utf8 },
      { type: OID.organizationName, value: ORGANIZATION, valueTagClass: utf8 },
    ],
  });
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  // DER: a BOOLEAN equal to its DEFAULT (critical FALSE) is omitted.
  if (critical) parts.push(forge.asn1.create(Class.UNIVERSAL, Type.BOOLEAN, false, '\u00ff'));
  parts.push(forge.asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, forge.asn1.toDer(value).getBytes()));
  return seq(parts);
}

function serverExtensions(names: SanName[], publicKey: KeyObject): Asn1[] {
  const generalNames = names.map((n) =>
    n.kind === 'dns'
      ? forge.asn1.create(Class.CONTEXT_SPECIFIC, 2 as forge.asn1.Type, false, n.text) // dNSName
      : forge.asn1.create(Class.CONTEXT_SPECIFIC, 7 as forge.asn1.Type, false, toBytes(n.bytes)), // iPAddress
  );
  return [
    // cA FALSE is the DEFAULT, so the SEQUENCE is empty.
    extension(OID.basicConstraints, true, seq([])),
    // digitalSignature is bit 0: one octet 0x80 with 7 unused bits (DER drops trailing zero bits).
    extension(OID.keyUsage, true, forge.asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, '\u0007\u0080')),
    extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth)])),
    extension(OID.subjectAltName, false, seq(generalNames)),
    extension(
      OID.subjectKeyIdentifier,
      false,
      forge.asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, toBytes(subjectKeyIdentifier(publicKey))),
    ),
  ];
}

/** RFC 5280 section 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits, here the uncompressed EC point. */
export function subjectKeyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  return createHash('sha1').update(point).digest();
}

/** forge works on "binary" strings, one char per byte. */
function toBytes(buf: Buffer): string {
  return buf.toString('latin1');
}

function fromBytes(bytes: string): Buffer {
  return Buffer.from(bytes, 'latin1');
}

/** RFC 7468 textual encoding, 64 columns, LF line ends. */
function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
