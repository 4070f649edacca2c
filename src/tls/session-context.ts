import { randomBytes, createHash } from 'node:crypto';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';
import type { InstalledCertificate } from './cert-store.js';

/**
 * Each control session gets its own SecureContext with its own 48 random ticket-key bytes and its own session-id
 * context. Its data connections are wrapped with the same context, so only a client holding *this* control session's
 * TLS session can resume there: a ticket from another session (or another server) fails to decrypt and the handshake
 * is a full one, which the data layer refuses. This is what stops data-port hijacking.
 *
 * Built once per control session at AUTH TLS (about 1 ms and 28 KiB), never per transfer.
 */
export function createSessionContext(cert: InstalledCertificate, cfg: Config['tls'], sessionId: string): SecureContext {
  return tls.createSecureContext({
    key: cert.keyPem,
    cert: cert.certPem,
    minVersion: cfg.minVersion,
    ticketKeys: randomBytes(48),
    sessionTimeout: cfg.sessionTimeoutSeconds,
    // OpenSSL caps the session-id context at 32 bytes.
    sessionIdContext: createHash('sha256').update(sessionId).digest('hex').slice(0, 32),
    honorCipherOrder: true,
  });
}

export interface TlsDescription {
  version: string;
  cipher: string;
  resumed: boolean;
}

export function describeTls(socket: TLSSocket): TlsDescription {
  return {
    version: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    resumed: socket.isSessionReused(),
  };
}
