import { accessOf } from '../access/login-user.js';
import type { Session } from '../control/session.js';
import type { DataConnection } from '../data/data-connection.js';
import type { EventFacts } from '../events/payload.js';

/** Who did it, for an event: the session, its user and groups, the client's address and software. */
export function sessionFacts(s: Session): Omit<EventFacts, 'event'> {
  const user = s.phase.kind === 'ready' ? s.phase.user : null;
  return { session: s.id, ip: s.peerIp, user: user?.name ?? null, groups: user === null ? [] : [...accessOf(user).user.groups], client: s.clientName };
}

/** Over which TLS a transfer ran. */
export function connectionFacts(conn: DataConnection | null): Pick<EventFacts, 'tlsVersion' | 'tlsCipher' | 'resumed'> {
  return { tlsVersion: conn?.tls?.version ?? null, tlsCipher: conn?.tls?.cipher ?? null, resumed: conn?.tls?.resumed ?? null };
}
