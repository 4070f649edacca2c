import { constants } from 'node:crypto';
import { Server } from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';
import type { InstalledCertificate } from './cert-store.js';
import type { TicketIssuer } from './session-tickets.js';

/**
 * Each control session gets its own SecureContext whose session tickets are sealed with the session's own key (see
 * session-tickets.ts for which tickets are accepted). Its data connections are wrapped with the same context, so only
 * a client holding *this* control session's TLS session (or a sibling's, same user and address) can resume there: any
 * other ticket fails to open and the handshake is a full one, which the data layer refuses. This is what stops
 * data-port hijacking.
 *
 * Built once per control session at AUTH TLS (about 1 ms and 28 KiB), never per transfer.
 */
export function createSessionContext(cert: InstalledCertificate, cfg: Config['tls'], tickets: TicketIssuer | null): SecureContext {
  const context = tls.createSecureContext({
    key: cert.keyPem,
    cert: cert.certPem,
    minVersion: cfg.minVersion,
    sessionTimeout: cfg.sessionTimeoutSeconds,
    // One value for every session: a session resumed from a sibling's ticket carries the sibling's context id, and
    // OpenSSL refuses to resume across different ones. Separation comes from the ticket keys and the per-context
    // session-ID cache, not from this id.
    sessionIdContext: SESSION_ID_CONTEXT,
    honorCipherOrder: true,
    ciphers: cfg.ciphers,
    // A renegotiation is a full handshake the client can ask for again and again on one connection; no FTPS client
    // needs it (TLS 1.3 has none at all).
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  });
  // null: a connection that is refused right after its handshake (implicit FTPS at a cap) and never resumes.
  tickets?.attach(context);
  return context;
}

const SESSION_ID_CONTEXT = 'ftpsd-session';

/**
 * TLS 1.2 sessions of one control session, for session-ID resumption. Tickets need no server state, but some clients
 * send none: curl with OpenSSL sets SSL_OP_NO_TICKET and resumes TLS 1.2 data connections by session ID only. Node
 * keeps no server-side session cache of its own (SSL_SESS_CACHE_NO_INTERNAL); a TLSSocket given a `server` with
 * 'newSession' and 'resumeSession' listeners stores and looks up sessions there. The cache belongs to one control
 * session, so another session's ID is never found, as another session's ticket never decrypts. The control session
 * creates one entry; full handshakes on data ports (refused, or allowed with requireDataSessionReuse off) add more,
 * so the oldest are dropped beyond this bound.
 */
const SESSION_ID_CACHE_ENTRIES = 8;
const sessionCaches = new WeakMap<SecureContext, Server>();

/** The `server` option for every server-side TLSSocket on `context` (control and data), created on first use. */
export function sessionIdCache(context: SecureContext): Server {
  let hub = sessionCaches.get(context);
  if (hub !== undefined) return hub;
  // Never listens: only the carrier of the two session events Node's TLSSocket emits on its `server`.
  hub = new Server();
  const sessions = new Map<string, Buffer>();
  hub.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
    sessions.set(id.toString('hex'), data);
    for (const oldest of sessions.keys()) {
      if (sessions.size <= SESSION_ID_CACHE_ENTRIES) break;
      sessions.delete(oldest);
    }
    done();
  });
  hub.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
    done(null, sessions.get(id.toString('hex')) ?? null);
  });
  sessionCaches.set(context, hub);
  return hub;
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
