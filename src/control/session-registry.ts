import type { ControlMode, Session } from './session.js';

// The read model of live control sessions that the admin API is given, and the one thing it may do to them: close
// one. The admin never holds a Session; it sees plain snapshots taken at the moment it asks.

export interface TransferSnapshot {
  direction: 'upload' | 'download';
  /** Path in the user's virtual tree. */
  path: string;
  bytes: number;
  /** Bytes expected (downloads); null when unknown (uploads). */
  size: number | null;
  startedAt: string;
  /** Average since the transfer started. */
  bytesPerSecond: number;
}

export interface SessionSnapshot {
  id: string;
  ip: string;
  port: number;
  mode: ControlMode;
  connectedAt: string;
  /** Null until the login completed. */
  user: string | null;
  loginAt: string | null;
  /** From CLNT, when the client sent it. */
  client: string | null;
  tls: { version: string; cipher: string } | null;
  /** The balancer's address when the connection came through PROXY protocol. */
  via: string | null;
  transfer: TransferSnapshot | null;
}

export interface SessionRegistry {
  list(): SessionSnapshot[];
  get(id: string): SessionSnapshot | null;
  /** Closes the session with a 421 naming the reason; the snapshot it had, or null when there is no such session. */
  kick(id: string, by: string): SessionSnapshot | null;
}

export function sessionRegistry(sessions: () => Iterable<Session>): SessionRegistry {
  const find = (id: string): Session | undefined => {
    for (const s of sessions()) if (s.id === id && !s.closed) return s;
    return undefined;
  };
  return {
    list: () => [...sessions()].filter((s) => !s.closed).map((s) => snapshotOf(s)).sort((a, b) => (a.connectedAt < b.connectedAt ? -1 : 1)),
    get: (id) => {
      const s = find(id);
      return s === undefined ? null : snapshotOf(s);
    },
    kick: (id, by) => {
      const s = find(id);
      if (s === undefined) return null;
      const snapshot = snapshotOf(s);
      s.log.info({ event: 'session_kicked', by }, 'session closed by an administrator');
      s.server.audit('session_closed', { sid: s.id, ip: s.peerIp, user: snapshot.user ?? undefined, reason: 'kicked', by });
      s.send({ code: 421, text: 'Connection closed by the administrator' });
      s.close('kicked');
      return snapshot;
    },
  };
}

export function snapshotOf(s: Session, now = Date.now()): SessionSnapshot {
  const t = s.data.current;
  const ready = s.phase.kind === 'ready' ? s.phase : null;
  return {
    id: s.id,
    ip: s.peerIp,
    port: s.peerPort,
    mode: s.mode,
    connectedAt: new Date(s.connectedAt).toISOString(),
    user: ready?.user.name ?? null,
    loginAt: ready === null ? null : new Date(ready.loginAt).toISOString(),
    client: s.clientName,
    tls: s.security.kind === 'tls' ? { version: s.security.info.version, cipher: s.security.info.cipher } : null,
    via: s.proxiedVia,
    transfer:
      t === null
        ? null
        : {
            direction: t.direction,
            path: t.path,
            bytes: t.progress.bytes,
            size: t.size,
            startedAt: new Date(t.startedAt).toISOString(),
            bytesPerSecond: Math.round(t.progress.bytes / Math.max(0.001, (now - t.startedAt) / 1000)),
          },
  };
}
