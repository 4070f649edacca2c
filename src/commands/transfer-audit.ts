import type { Session } from '../control/session.js';
import type { DataConnection } from '../data/data-connection.js';
import type { TransferLimits } from '../data/transfer.js';
import { connectionFacts, sessionFacts } from './event-facts.js';

export interface TransferRecord {
  /** Who ran it, taken when it started: a session closed under the transfer (kick, ban, shutdown) is no longer logged in. */
  user: string;
  direction: 'upload' | 'download';
  path: string;
  bytes: number;
  started: number;
  conn: DataConnection | null;
  offset?: number;
  sha256?: string;
  result: 'ok' | 'aborted' | 'failed';
  code: number;
}

/** One audit record per transfer: who, from where, what, how much, how long, its hash, over which TLS, and how it ended. */
export function auditTransfer(s: Session, r: TransferRecord): void {
  s.server.metrics.transfer(r.direction, r.result, r.bytes);
  s.server.audit('transfer', {
    sid: s.id,
    ip: s.peerIp,
    user: r.user,
    client: s.clientName ?? undefined,
    direction: r.direction,
    path: r.path,
    bytes: r.bytes,
    offset: r.offset ?? 0,
    ms: Date.now() - r.started,
    sha256: r.sha256,
    tlsVersion: r.conn?.tls?.version ?? null,
    cipher: r.conn?.tls?.cipher ?? null,
    resumed: r.conn?.tls?.resumed ?? false,
    ...(r.conn?.siblingSession ? { resumedFromSession: r.conn.siblingSession } : {}),
    result: r.result,
    code: r.code,
  });
  // Committed uploads and their refusals are published by the upload itself (its event is in the store before 226).
  if (r.direction === 'download' && r.result === 'ok') {
    s.server.events.publish({ ...sessionFacts(s), ...connectionFacts(r.conn), event: 'download', path: r.path, size: (r.offset ?? 0) + r.bytes, bytes: r.bytes, code: r.code });
  }
}

export function transferLimits(s: Session, direction: 'upload' | 'download'): TransferLimits {
  const l = s.server.config.limits;
  // A user's own limit (users file) replaces the server-wide one, in both directions: a trusted partner may be
  // allowed more, a bulk account less.
  const user = s.phase.kind === 'ready' ? s.phase.user : null;
  const bytesPerSecond = direction === 'upload' ? (user?.uploadBytesPerSecond ?? l.uploadBytesPerSecond) : (user?.downloadBytesPerSecond ?? l.downloadBytesPerSecond);
  return { stallTimeoutMs: l.stalledTransferTimeoutMs, bytesPerSecond };
}
