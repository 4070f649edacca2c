import type { KeyObject } from 'node:crypto';
import acme from 'acme-client';
import type { Config } from '../config/schema.js';

export type CertificateKeyType = Config['acme']['keyType'];

/** A fresh private key for each certificate: a renewal never reuses the previous key. */
export async function createCertificateKey(keyType: CertificateKeyType): Promise<Buffer> {
  switch (keyType) {
    case 'ecdsa-p256':
      return acme.crypto.createPrivateEcdsaKey('P-256');
    case 'rsa-2048':
      return acme.crypto.createPrivateRsaKey(2048);
    case 'rsa-3072':
      return acme.crypto.createPrivateRsaKey(3072);
    case 'rsa-4096':
      return acme.crypto.createPrivateRsaKey(4096);
  }
}

/** The account key is always ECDSA P-256 (ES256), which every ACME CA accepts (RFC 8555 section 6.2). */
export function createAccountKey(): Promise<Buffer> {
  return acme.crypto.createPrivateEcdsaKey('P-256');
}

/** Whether a certificate's public key is of the configured type, so changing acme.keyType leads to a new order. */
export function keyMatchesType(publicKey: KeyObject, keyType: CertificateKeyType): boolean {
  const details = publicKey.asymmetricKeyDetails ?? {};
  if (keyType === 'ecdsa-p256') return publicKey.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1';
  return publicKey.asymmetricKeyType === 'rsa' && details.modulusLength === Number(keyType.slice('rsa-'.length));
}
