import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Store } from '../store/open-store.js';
import { loadSharedCertificate, saveSharedCertificate, withClusterLock } from '../store/cluster-repo.js';
import { parseMeta, type StoredCertificate, type StoredCertificateMeta } from './acme-store.js';

// The ACME certificate of nodes sharing one PostgreSQL store: the node that orders stores it there, every node installs
// it from there (woken by a NOTIFY, or at its next check), and only the holder of an advisory lock orders.

const NAME = 'acme';

export interface SharedCertificates {
  store: Store;
  nodeId: string;
}

/** The certificate in the store, or null when there is none or it does not parse (or its key does not match). */
export async function loadShared(s: SharedCertificates): Promise<StoredCertificate | null> {
  const row = await loadSharedCertificate(s.store.db, NAME);
  if (row === null) return null;
  try {
    const leaf = new X509Certificate(row.cert_pem);
    if (!leaf.checkPrivateKey(createPrivateKey(row.key_pem))) return null;
    const meta = parseMeta(JSON.parse(row.meta));
    return meta === null ? null : { keyPem: row.key_pem, certPem: row.cert_pem, leaf, meta };
  } catch {
    return null;
  }
}

export async function saveShared(s: SharedCertificates, keyPem: string, certPem: string, meta: StoredCertificateMeta): Promise<void> {
  await saveSharedCertificate(s.store.db, s.store.engine, NAME, { key_pem: keyPem, cert_pem: certPem, meta: JSON.stringify(meta), updated_at: Date.now(), updated_by: s.nodeId });
}

/** Runs `fn` holding the cluster's order lock for `directoryUrl`; null when another node holds it. */
export function withOrderLock<T>(s: SharedCertificates, directoryUrl: string, fn: () => Promise<T>): Promise<{ value: T } | null> {
  return withClusterLock(s.store.db, s.store.engine, `ftpsd_acme_order:${directoryUrl}`, fn);
}
