import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AcmeError } from './acme-error.js';

/** What is remembered beside the certificate so a changed configuration leads to a new order. */
export interface StoredCertificateMeta {
  directoryUrl: string;
  domains: string[];
  keyType: string;
  issuedAt: string;
}

export interface StoredCertificate {
  keyPem: string;
  /** Leaf first, then intermediates, as the CA sent it. */
  certPem: string;
  leaf: X509Certificate;
  meta: StoredCertificateMeta;
}

const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;

/**
 * Account key and certificate under one directory (acme.dir):
 *   account.key  the ACME account's private key (0600)
 *   cert.key     the certificate's private key (0600)
 *   cert.pem     leaf and intermediates
 *   cert.json    which CA and names the certificate was ordered for
 * Every file is replaced atomically (temporary file, fsync, rename, fsync of the directory), so a crash or a reader
 * never sees half a file. The three certificate files are written key first, meta last; a reader that catches them
 * in between sees a key that does not match the certificate, which `loadCertificate` reports as "no certificate".
 */
export class AcmeStore {
  readonly dir: string;
  readonly accountKeyFile: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly metaFile: string;

  constructor(dir: string) {
    this.dir = dir;
    this.accountKeyFile = join(dir, 'account.key');
    this.keyFile = join(dir, 'cert.key');
    this.certFile = join(dir, 'cert.pem');
    this.metaFile = join(dir, 'cert.json');
  }

  /** Returns the stored account key, creating and storing one with `create` the first time. */
  async loadOrCreateAccountKey(create: () => Promise<Buffer | string>): Promise<string> {
    const existing = await readOptional(this.accountKeyFile);
    if (existing !== null) {
      try {
        createPrivateKey(existing);
        return existing;
      } catch (err) {
        // Replacing an unreadable account key would silently create a new account; make the operator decide.
        throw new AcmeError('store', `account key ${this.accountKeyFile} is not a valid private key: ${(err as Error).message}`, { cause: err });
      }
    }
    const key = (await create()).toString();
    await this.#write(this.accountKeyFile, key, KEY_MODE);
    return key;
  }

  /** The stored certificate, or null when it is missing, unparsable, or its key does not match. */
  async loadCertificate(): Promise<StoredCertificate | null> {
    const [keyPem, certPem, metaText] = await Promise.all([
      readOptional(this.keyFile),
      readOptional(this.certFile),
      readOptional(this.metaFile),
    ]);
    if (keyPem === null || certPem === null || metaText === null) return null;
    try {
      const leaf = new X509Certificate(certPem);
      if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) return null;
      const meta = parseMeta(JSON.parse(metaText));
      return meta === null ? null : { keyPem, certPem, leaf, meta };
    } catch {
      return null;
    }
  }

  async saveCertificate(keyPem: string, certPem: string, meta: StoredCertificateMeta): Promise<void> {
    await this.#write(this.keyFile, keyPem, KEY_MODE);
    await this.#write(this.certFile, certPem, PUBLIC_MODE);
    await this.#write(this.metaFile, `${JSON.stringify(meta, null, 2)}\n`, PUBLIC_MODE);
  }

  async #write(file: string, data: string, mode: number): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, data, mode);
  }
}

/** Write to a temporary name in the same directory, fsync, rename over the target, fsync the directory. */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  // The mode is given at creation so a private key is never readable by others, not even for a moment.
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // the umask may have removed bits from the creation mode
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(join(file, '..'));
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename itself durable. Some file systems refuse fsync on a directory; the data is already safe then.
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort
  } finally {
    await handle?.close();
  }
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AcmeError('store', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function parseMeta(raw: unknown): StoredCertificateMeta | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  const { directoryUrl, domains, keyType, issuedAt } = m;
  if (typeof directoryUrl !== 'string' || typeof keyType !== 'string' || typeof issuedAt !== 'string') return null;
  if (!Array.isArray(domains) || !domains.every((d): d is string => typeof d === 'string')) return null;
  return { directoryUrl, domains, keyType, issuedAt };
}
