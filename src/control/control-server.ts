import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { readProxyHeader, ProxyHeaderRefused } from '../cluster/proxy-header-reader.js';
import { CidrSet } from '../defender/cidr.js';
import { formatReply } from '../protocol/reply.js';
import { unmapIPv4 } from '../protocol/address-text.js';
import { createSessionContext } from '../tls/session-context.js';
import { DataChannel } from './data-channel.js';
import { Session, type ControlMode } from './session.js';
import type { ServerContext } from './server-context.js';

/**
 * Accepts control connections and enforces what must be decided before a byte of TLS or argon2 is spent: bans,
 * the total, per-IP and not-logged-in session caps. Keeps the set of live sessions for shutdown, bans and limits.
 * The explicit listener and the optional implicit FTPS one feed the same sessions, caps and defender.
 */
export class ControlServer {
  readonly #servers: net.Server[] = [];
  readonly #ctx: ServerContext;
  readonly #log: Logger;
  readonly sessions = new Set<Session>();
  readonly #perIp = new Map<string, number>();
  readonly #perUser = new Map<string, Set<Session>>();
  /** Sessions not logged in, oldest first (Map order), and how many of them each address holds. */
  readonly #waiting = new Map<Session, string>();
  readonly #waitingPerIp = new Map<string, number>();
  /** Balancers whose PROXY header names the client (proxyProtocol.trustedCidrs); null when the protocol is off. */
  readonly #balancers: CidrSet | null;

  constructor(ctx: ServerContext) {
    this.#ctx = ctx;
    this.#log = ctx.log;
    const trusted = ctx.config.proxyProtocol.trustedCidrs;
    this.#balancers = trusted.length > 0 ? new CidrSet(trusted) : null;
  }

  /** Opens one listener; `implicit` ones start TLS at connect (implicit FTPS). Call once per mode. */
  listen(host: string, port: number, mode: ControlMode = 'explicit'): Promise<net.AddressInfo> {
    const server = net.createServer({ noDelay: true }, (socket) => this.#onConnection(socket, mode));
    server.on('error', (err) => this.#log.error({ err, mode }, 'control listener error'));
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  #onConnection(socket: net.Socket, mode: ControlMode): void {
    const connectedFrom = unmapIPv4(socket.remoteAddress ?? '');
    socket.on('error', () => undefined);
    if (this.#balancers === null || !this.#balancers.has(connectedFrom)) {
      this.#admit(socket, mode, { ip: connectedFrom, port: socket.remotePort ?? 0 });
      return;
    }
    // A trusted balancer speaks first: nothing is sent, and no limit is counted, until its header names the client.
    socket.pause();
    readProxyHeader(socket, this.#ctx.config.proxyProtocol.headerTimeoutMs).then(
      (header) => this.#admit(socket, mode, header.kind === 'proxied' ? { ip: unmapIPv4(header.source.ip), port: header.source.port } : { ip: connectedFrom, port: socket.remotePort ?? 0 }, connectedFrom),
      (err: unknown) => {
        const reason = err instanceof ProxyHeaderRefused ? err.reason : 'error';
        this.#log.warn({ event: 'proxy_header_refused', balancer: connectedFrom, reason }, 'PROXY header refused; connection closed');
        socket.destroy();
      },
    );
  }

  /** Admits a connection whose client address is known (the socket's peer, or a trusted PROXY header's source). */
  #admit(socket: net.Socket, mode: ControlMode, peer: { ip: string; port: number }, via?: string): void {
    const ip = peer.ip;
    const limits = this.#ctx.config.limits;
    const refuse = (reason: string, text: string) => {
      this.#log.info({ event: 'connection_refused', ip, reason, mode }, 'connection refused');
      if (mode === 'implicit') return this.#refuseOverTls(socket, reason, text);
      socket.end(formatReply({ code: 421, text }));
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    if (this.#ctx.defender.isBanned(ip)) return refuse('banned', 'Service not available: your address is temporarily blocked');
    if (this.#ctx.stopping) return refuse('stopping', 'Service not available: server shutting down');
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp >= limits.maxSessionsPerIp) return refuse('max_sessions_per_ip', 'Too many connections from your address');
    const full = this.sessions.size >= limits.maxSessions;
    if ((full || this.#waiting.size >= limits.maxUnauthenticatedSessions) && !this.#displaceFor(ip)) {
      return refuse(full ? 'max_sessions' : 'max_unauthenticated_sessions', 'Too many connections, try again later');
    }

    const session = new Session(socket, this.#ctx, (s) => new DataChannel(s), mode, via === undefined ? undefined : { ...peer, via });
    this.sessions.add(session);
    this.#perIp.set(ip, fromIp + 1);
    // Under pressure a newcomer gets less time to log in, so silent connections turn over faster.
    const pressed = this.#waiting.size >= limits.maxUnauthenticatedSessions / 2;
    this.#addWaiting(session);
    this.#ctx.metrics.sessionOpened();
    session.start(pressed ? Math.min(limits.loginTimeoutUnderPressureMs, limits.loginTimeoutMs) : limits.loginTimeoutMs);
    // After a PROXY header the socket was left paused with the client's first bytes unshifted; an implicit session's
    // TLS layer takes the socket over by itself.
    if (via !== undefined && mode === 'explicit') socket.resume();
  }

  /**
   * An implicit FTPS client reads nothing but TLS: a plaintext 421 would surface as a TLS error. A banned address
   * gets no handshake (it costs us CPU on a connection we already know is hostile) and is cut; the others get the
   * 421 inside TLS, bounded by the handshake timeout.
   */
  #refuseOverTls(socket: net.Socket, reason: string, text: string): void {
    if (reason === 'banned') {
      socket.destroy();
      return;
    }
    const cfg = this.#ctx.config.tls;
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: createSessionContext(this.#ctx.certStore.current(), cfg, null) });
    secure.on('error', () => secure.destroy());
    secure.once('secure', () => secure.end(formatReply({ code: 421, text })));
    setTimeout(() => secure.destroy(), cfg.handshakeTimeoutMs).unref();
  }

  /**
   * Makes room for a connection from `ip` when the not-logged-in connections fill their cap: the oldest waiting
   * connection of the address holding the most goes, if that address holds at least two more than `ip` does. A flood
   * from a few addresses thus gives way to everyone else, while many addresses holding one each (a botnet, or just a
   * busy server) are not churned: the newcomer is refused instead.
   */
  #displaceFor(ip: string): boolean {
    let heaviest: string | null = null;
    let most = 0;
    for (const [addr, n] of this.#waitingPerIp) {
      if (n > most) [heaviest, most] = [addr, n];
    }
    if (heaviest === null || most < (this.#waitingPerIp.get(ip) ?? 0) + 2) return false;
    for (const [session, addr] of this.#waiting) {
      if (addr !== heaviest) continue;
      this.#log.info({ event: 'session_displaced', ip: addr, sid: session.id, waiting: most, for: ip }, 'connection not logged in displaced');
      this.#ctx.defender.record(addr, 'loginTimeout', { displaced: true });
      session.send({ code: 421, text: 'Too many connections waiting for login, closing the oldest' });
      session.close('displaced before login');
      return true;
    }
    return false;
  }

  #addWaiting(session: Session): void {
    this.#waiting.set(session, session.peerIp);
    this.#waitingPerIp.set(session.peerIp, (this.#waitingPerIp.get(session.peerIp) ?? 0) + 1);
  }

  #removeWaiting(session: Session): void {
    const ip = this.#waiting.get(session);
    if (ip === undefined) return;
    this.#waiting.delete(session);
    const n = (this.#waitingPerIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#waitingPerIp.delete(ip);
    else this.#waitingPerIp.set(ip, n);
  }

  /** Counts a logged-in session against `max` (default limits.maxLoginsPerUser); it no longer counts as waiting for a login. */
  acquireLogin(session: Session, user: string, max = this.#ctx.config.limits.maxLoginsPerUser): boolean {
    const set = this.#perUser.get(user) ?? new Set<Session>();
    if (set.size >= max) return false;
    set.add(session);
    this.#perUser.set(user, set);
    this.#removeWaiting(session);
    return true;
  }

  /** Called by a session when it closes (or logs out with REIN, after which it waits for a login again). */
  release(session: Session, fullyClosed: boolean): void {
    for (const [user, set] of this.#perUser) {
      if (set.delete(session) && set.size === 0) this.#perUser.delete(user);
    }
    if (!fullyClosed) {
      if (this.sessions.has(session) && !this.#waiting.has(session)) this.#addWaiting(session);
      return;
    }
    this.#removeWaiting(session);
    if (!this.sessions.delete(session)) return;
    const n = (this.#perIp.get(session.peerIp) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(session.peerIp);
    else this.#perIp.set(session.peerIp, n);
    this.#ctx.metrics.sessionClosed();
  }

  /** Closes every session of an address (a ban was just issued). */
  closeSessionsOf(ip: string, text: string): number {
    let n = 0;
    for (const s of this.sessions) {
      if (s.peerIp !== ip) continue;
      s.send({ code: 421, text });
      s.close('banned');
      n++;
    }
    return n;
  }

  /** Stops accepting; resolves when the listeners are closed (sessions are handled by the caller). */
  async stopAccepting(): Promise<void> {
    await Promise.all(
      this.#servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))),
    );
  }
}
