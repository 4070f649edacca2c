import { EventEmitter } from 'node:events';
import { X509Certificate, createPrivateKey } from 'node:crypto';

export type CertificateSource = 'self-signed' | 'file' | 'acme';

export interface CertificatePair {
  keyPem: string;
  /** Leaf first, then intermediates. */
  certPem: string;
  source: CertificateSource;
}

export interface InstalledCertificate extends CertificatePair {
  leaf: X509Certificate;
  installedAt: Date;
}

/**
 * Holds the certificate that new control sessions are given. Installing a new pair never touches sessions already
 * open: each builds its own SecureContext from `current()` at AUTH TLS and keeps it, so its data connections keep
 * resuming across a renewal.
 */
export class CertStore extends EventEmitter<{ change: [InstalledCertificate, InstalledCertificate | null] }> {
  #current: InstalledCertificate | null = null;

  current(): InstalledCertificate {
    if (this.#current === null) throw new Error('no certificate installed');
    return this.#current;
  }

  has(): boolean {
    return this.#current !== null;
  }

  /** Validates that key and certificate belong together, then makes them current. Throws and keeps the old pair otherwise. */
  install(pair: CertificatePair): InstalledCertificate {
    const leaf = new X509Certificate(pair.certPem);
    const key = createPrivateKey(pair.keyPem);
    if (!leaf.checkPrivateKey(key)) throw new Error('private key does not match the certificate');
    const installed: InstalledCertificate = { ...pair, leaf, installedAt: new Date() };
    const previous = this.#current;
    this.#current = installed;
    this.emit('change', installed, previous);
    return installed;
  }
}

export function describeCertificate(leaf: X509Certificate, now = Date.now()) {
  const notAfter = new Date(leaf.validTo);
  return {
    subject: leaf.subject.replace(/\n/g, ', '),
    names: (leaf.subjectAltName ?? '').split(', ').filter((s) => s !== '').map((s) => s.replace(/^(DNS|IP Address):/, '')),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    serial: leaf.serialNumber,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now) / 86_400_000),
  };
}
