import net from 'node:net';
import type { Logger } from 'pino';
import { formatReply } from '../protocol/reply.js';
import { unmapIPv4 } from '../protocol/address-text.js';
import { DataChannel } from './data-channel.js';
import { Session } from './session.js';
import type { ServerContext } from './server-context.js';

/**
 * Accepts control connections and enforces what must be decided before a byte of TLS or argon2 is spent: bans,
 * the total and per-IP session caps. Keeps the set of live sessions for shutdown, bans and limits.
 */
export class ControlServer {
  readonly #server: net.Server;
  readonly #ctx: ServerContext;
  readonly #log: Logger;
  readonly sessions = new Set<Session>();
  readonly #perIp = new Map<string, number>();
  readonly #perUser = new Map<string, Set<Session>>();

  constructor(ctx: ServerContext) {
    this.#ctx = ctx;
    this.#log = ctx.log;
    this.#server = net.createServer({ noDelay: true }, (socket) => this.#onConnection(socket));
    this.#server.on('error', (err) => this.#log.error({ err }, 'control listener error'));
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as net.AddressInfo);
      });
    });
  }

  #onConnection(socket: net.Socket): void {
    const ip = unmapIPv4(socket.remoteAddress ?? '');
    socket.on('error', () => undefined);
    const limits = this.#ctx.config.limits;
    const refuse = (reason: string, text: string) => {
      this.#log.info({ event: 'connection_refused', ip, reason }, 'connection refused');
      socket.end(formatReply({ code: 421, text }));
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    if (this.#ctx.defender.isBanned(ip)) return refuse('banned', 'Service not available: your address is temporarily blocked');
    if (this.#ctx.stopping) return refuse('stopping', 'Service not available: server shutting down');
    if (this.sessions.size >= limits.maxSessions) return refuse('max_sessions', 'Too many connections, try again later');
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp >= limits.maxSessionsPerIp) return refuse('max_sessions_per_ip', 'Too many connections from your address');

    const session = new Session(socket, this.#ctx, (s) => new DataChannel(s));
    this.sessions.add(session);
    this.#perIp.set(ip, fromIp + 1);
    this.#ctx.metrics.sessionOpened();
    session.start();
  }

  /** Counts a logged-in session against `max` (default limits.maxLoginsPerUser). */
  acquireLogin(session: Session, user: string, max = this.#ctx.config.limits.maxLoginsPerUser): boolean {
    const set = this.#perUser.get(user) ?? new Set<Session>();
    if (set.size >= max) return false;
    set.add(session);
    this.#perUser.set(user, set);
    return true;
  }

  /** Called by a session when it closes (or logs out with REIN). */
  release(session: Session, fullyClosed: boolean): void {
    for (const [user, set] of this.#perUser) {
      if (set.delete(session) && set.size === 0) this.#perUser.delete(user);
    }
    if (!fullyClosed || !this.sessions.delete(session)) return;
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

  /** Stops accepting; resolves when the listener is closed (sessions are handled by the caller). */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
    });
  }
}
