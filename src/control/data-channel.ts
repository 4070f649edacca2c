import type { SecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { FtpError } from '../errors.js';
import { ActiveConnector } from '../data/active-connector.js';
import { DataConnectionRefused, type DataConnection, type DataSource, type RefusalReason, type TransferDirection } from '../data/data-connection.js';
import { PassiveListener } from '../data/passive-listener.js';
import { listenerCap } from '../data/passive-ports.js';
import type { MetricsSink } from '../metrics/metrics-sink.js';
import type { Reply } from '../protocol/reply.js';
import type { Session } from './session.js';
import { ProxyHeaderRefused } from '../cluster/proxy-header-reader.js';
import { CidrSet } from '../defender/cidr.js';
import { reuseWaived } from '../access/login-user.js';

/** What the client reads in a 425 for each refusal: a reason a human can act on. */
const REFUSAL_TEXT: Record<RefusalReason, string> = {
  wrong_address: "Can't open data connection: data connection from another address",
  proxy_header: "Can't open data connection: the load balancer's PROXY header was missing or invalid",
  no_ticket_offered: "Can't open data connection: TLS session of data connection not resumed (the client offered no session; turn on TLS session reuse in the client)",
  foreign_session: "Can't open data connection: TLS session of data connection not resumed (it belongs to another connection)",
  handshake_failed: "Can't open data connection: TLS handshake failed",
  accept_timeout: "Can't open data connection: the client did not connect to the passive port",
  idle_timeout: "Can't open data connection: the passive port was given back, no transfer command came in time; send PASV or EPSV again",
  handshake_timeout: "Can't open data connection: TLS handshake timed out",
  connect_failed: "Can't open data connection: could not connect to the PORT/EPRT address",
  closed: "Can't open data connection: it was closed",
};

const REFUSAL_METRIC = {
  wrong_address: 'wrong_address',
  proxy_header: 'handshake_failed',
  no_ticket_offered: 'not_resumed_no_ticket',
  foreign_session: 'not_resumed_foreign_session',
  handshake_failed: 'handshake_failed',
  handshake_timeout: 'timeout',
  accept_timeout: 'timeout',
  idle_timeout: 'timeout',
  connect_failed: 'handshake_failed',
  closed: 'handshake_failed',
} as const satisfies Record<RefusalReason, Parameters<MetricsSink['dataConnection']>[0]>;

type AddressOverrides = Config['pasv']['addressOverrides'];
const overrideCache = new WeakMap<AddressOverrides, Array<{ networks: CidrSet; address: string }>>();

/** pasv.addressOverrides parsed once per configuration, not on every PASV. */
function parsedOverrides(overrides: AddressOverrides): Array<{ networks: CidrSet; address: string }> {
  let parsed = overrideCache.get(overrides);
  if (parsed === undefined) {
    parsed = overrides.map((o) => ({ networks: new CidrSet([o.cidr]), address: o.address }));
    overrideCache.set(overrides, parsed);
  }
  return parsed;
}

type Active = { controller: AbortController; done: Promise<void>; watch: TransferWatch | null };

/** What a running transfer shows to the admin's session list: the file, its size when known, bytes so far. */
export interface TransferWatch {
  direction: TransferDirection;
  path: string;
  /** Bytes expected (a download's file size from its offset); null for uploads. */
  size: number | null;
  /** Kept up to date by the transfer loop. */
  progress: { bytes: number };
  startedAt: number;
}

type ProxySettings = Config['proxyProtocol'];
const balancerCache = new WeakMap<ProxySettings, { balancers: CidrSet; headerTimeoutMs: number } | null>();

/** proxyProtocol.passive: the trusted balancers, parsed once per configuration; null when off. */
function passiveProxy(settings: ProxySettings): { balancers: CidrSet; headerTimeoutMs: number } | null {
  let parsed = balancerCache.get(settings);
  if (parsed === undefined) {
    parsed = settings.passive && settings.trustedCidrs.length > 0 ? { balancers: new CidrSet(settings.trustedCidrs), headerTimeoutMs: settings.headerTimeoutMs } : null;
    balancerCache.set(settings, parsed);
  }
  return parsed;
}


/**
 * The session's side of the data layer: the pending data source (passive listener or active connector) and the
 * transfer in progress. It writes no reply itself except through the session, and owns every listener and data
 * socket it opened.
 */
export class DataChannel {
  readonly #session: Session;
  #pending: DataSource | null = null;
  #active: Active | null = null;
  /** EPSV ALL (RFC 2428 §4): from now on only EPSV may set up data connections. */
  epsvAll = false;

  constructor(session: Session) {
    this.#session = session;
  }

  get busy(): boolean {
    return this.#active !== null;
  }

  /** The running transfer, when its command described it (RETR, STOR, APPE, STOU); null otherwise. */
  get current(): Readonly<TransferWatch> | null {
    return this.#active?.watch ?? null;
  }

  /** PASV/EPSV: opens a fresh one-shot listener, replacing any previous one. */
  async openPassive(): Promise<{ port: number; advertised: string }> {
    const s = this.#session;
    const cfg = s.server.config;
    const context = this.#replacePending();
    const pool = s.server.passivePorts;
    const owner = {
      user: s.user.name,
      address: s.peerIp,
      maxPerUser: listenerCap(cfg.pasv.maxListenersPerUser, pool.size),
      maxPerAddress: listenerCap(cfg.pasv.maxListenersPerAddress, pool.size),
    };
    let listener: PassiveListener;
    try {
      listener = await PassiveListener.open(
        pool,
        s.localAddress,
        owner,
        {
          expectedPeer: s.peerIp,
          context,
          requireSessionReuse: this.#requireSessionReuse(),
          siblingLoginWaitMs: s.server.config.tls.siblingLoginWaitMs,
          chunkBytes: cfg.limits.transferChunkBytes,
          onRefused: (refusal) => this.#onRefused(refusal),
          proxy: passiveProxy(cfg.proxyProtocol),
        },
        { acceptMs: cfg.pasv.acceptTimeoutMs, idleMs: Math.min(cfg.pasv.idleListenerTimeoutMs, cfg.pasv.acceptTimeoutMs), handshakeMs: cfg.tls.handshakeTimeoutMs },
      );
    } catch (err) {
      if (err instanceof FtpError && err.reason === 'pasv_exhausted') {
        s.server.metrics.passiveExhausted();
        s.log.warn({ event: 'pasv_exhausted', range: `${cfg.pasv.minPort}-${cfg.pasv.maxPort}` }, 'passive port range exhausted');
      }
      if (err instanceof FtpError && (err.reason === 'pasv_user_limit' || err.reason === 'pasv_address_limit')) {
        s.log.warn({ event: 'pasv_limit', reason: err.reason, user: owner.user, perUser: owner.maxPerUser, perAddress: owner.maxPerAddress }, 'passive listener limit reached');
      }
      throw err;
    }
    this.#pending = listener;
    return { port: listener.port, advertised: this.advertisedAddress() };
  }

  /**
   * PORT/EPRT: remembers where to connect at the next transfer command. The caller has checked that the address is
   * the control connection's peer and the port unprivileged.
   */
  openActive(host: string, port: number): void {
    const s = this.#session;
    const context = this.#replacePending();
    this.#pending = new ActiveConnector(
      { host, port, localAddress: s.localAddress },
      {
        context,
        requireSessionReuse: this.#requireSessionReuse(),
        siblingLoginWaitMs: s.server.config.tls.siblingLoginWaitMs,
        chunkBytes: s.server.config.limits.transferChunkBytes,
        onRefused: (refusal) => this.#onRefused(refusal),
      },
      s.server.config.activeMode.connectTimeoutMs,
    );
  }

  /** The user's own requireDataSessionReuse when the users file gives one, else tls.requireDataSessionReuse. */
  #requireSessionReuse(): boolean {
    const s = this.#session;
    // A reuse exception in the user's policy waives the check until its expiry, when it lapses by itself.
    if (s.phase.kind === 'ready' && reuseWaived(s.phase.user)) return false;
    const own = s.phase.kind === 'ready' ? s.phase.user.requireDataSessionReuse : null;
    return own ?? s.server.config.tls.requireDataSessionReuse;
  }

  /** Drops any pending data source and checks a new one may be set up; returns the TLS context for it, if any. */
  #replacePending(): SecureContext | null {
    const s = this.#session;
    this.#pending?.destroy();
    this.#pending = null;
    if (s.server.stopping) throw new FtpError(421, 'Server shutting down', { reason: 'stopping' });
    if (s.params.prot === 'C' && s.server.config.tls.requireForData) {
      throw new FtpError(521, 'Data connections must be encrypted: send PBSZ 0 and PROT P first', { reason: 'prot_p_required' });
    }
    return s.params.prot === 'P' && s.security.kind === 'tls' ? s.security.context : null;
  }

  /** The address a 227 reply names: an override for the client's network, the external address, or our own. */
  advertisedAddress(): string {
    const s = this.#session;
    const pasv = s.server.config.pasv;
    for (const o of parsedOverrides(pasv.addressOverrides)) if (o.networks.has(s.peerIp)) return o.address;
    if (pasv.externalAddress !== '') return pasv.externalAddress;
    return s.localAddress;
  }

  #onRefused(refusal: DataConnectionRefused): void {
    const s = this.#session;
    const metric = REFUSAL_METRIC[refusal.reason];
    s.server.metrics.dataConnection(metric);
    // A PROXY header refusal says which rule (no_header, truncated, untrusted, ...); refusal.peer is then who sent it.
    const detail = refusal.cause instanceof ProxyHeaderRefused ? refusal.cause.reason : undefined;
    s.log.warn({ event: 'data_connection_refused', reason: refusal.reason, detail, peer: refusal.peer, expected: s.peerIp, user: s.phase.kind === 'ready' ? s.phase.user.name : undefined }, 'data connection refused');
    s.server.audit('data_connection_refused', { sid: s.id, ip: refusal.peer || s.peerIp, expected: s.peerIp, reason: refusal.reason });
    // Only a connection from another address is scored. A refused TLS session comes from the control connection's own
    // address (the address is checked first): that is the user's own client, or someone behind the same NAT, and
    // scoring it would ban the user's address for its client's TLS habits.
    if (refusal.reason === 'wrong_address') s.server.defender.record(refusal.peer, 'foreignDataConnection', { sid: s.id });
  }

  /**
   * Runs one transfer command: 150, then the verified data connection, then `work`. Returns the final reply (226 from
   * `work`, or 425/426). ABOR and session end abort it through the signal. `direction` picks the data connection's TLS
   * path (see startTlsDataConnection).
   */
  async transfer(
    direction: TransferDirection,
    preliminary: string,
    work: (conn: DataConnection, signal: AbortSignal) => Promise<Reply>,
    watch?: Omit<TransferWatch, 'direction' | 'startedAt'>,
  ): Promise<Reply> {
    const s = this.#session;
    const listener = this.#pending;
    if (listener === null) throw new FtpError(425, 'Use PASV or EPSV first', { reason: 'no_data_connection' });
    this.#pending = null;
    const controller = new AbortController();
    let finish!: () => void;
    this.#active = { controller, done: new Promise((r) => (finish = r)), watch: watch === undefined ? null : { ...watch, direction, startedAt: Date.now() } };
    try {
      s.send({ code: 150, text: preliminary });
      let conn: DataConnection;
      try {
        conn = await listener.connection(s.server.config.tls.handshakeTimeoutMs, controller.signal, direction);
      } catch (err) {
        if (controller.signal.aborted) return { code: 426, text: 'Connection closed; transfer aborted' };
        const reason = err instanceof DataConnectionRefused ? err.reason : 'closed';
        // The listener reports every other refusal through onRefused, which counts it.
        if (reason === 'accept_timeout') s.server.metrics.dataConnection('timeout');
        return { code: 425, text: REFUSAL_TEXT[reason] };
      }
      s.server.metrics.dataConnection(conn.tls === null ? 'clear' : conn.siblingSession !== null ? 'resumed_sibling' : 'resumed');
      if (conn.siblingSession !== null) {
        s.log.info({ event: 'data_session_sibling', sibling: conn.siblingSession }, 'data connection resumed a sibling session of the same user and address');
      }
      const onAbort = () => conn.destroy();
      controller.signal.addEventListener('abort', onAbort, { once: true });
      try {
        return await work(conn, controller.signal);
      } catch (err) {
        if (controller.signal.aborted) return { code: 426, text: 'Connection closed; transfer aborted' };
        if (err instanceof FtpError) throw err;
        s.log.info({ event: 'transfer_interrupted', err: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code } }, 'transfer interrupted');
        return { code: 426, text: 'Connection closed; transfer aborted' };
      } finally {
        controller.signal.removeEventListener('abort', onAbort);
        closeGracefully(conn, s.server.config.limits.dataCloseTimeoutMs);
      }
    } finally {
      listener.close();
      this.#active = null;
      finish();
    }
  }

  /** ABOR: stops the running transfer and waits until its 426 went out. True when there was one. */
  async abort(): Promise<boolean> {
    this.#pending?.destroy();
    this.#pending = null;
    const active = this.#active;
    if (active === null) return false;
    active.controller.abort();
    await active.done;
    return true;
  }

  /** Session end or REIN: drops the pending listener and any transfer. */
  reset(): void {
    this.#pending?.destroy();
    this.#pending = null;
    this.#active?.controller.abort();
  }
}

/** After a download the socket was ended (close_notify + FIN); let the client read the rest, but not forever. */
function closeGracefully(conn: DataConnection, maxWaitMs: number): void {
  if (conn.stream.destroyed) return;
  const timer = setTimeout(() => conn.destroy(), maxWaitMs).unref();
  conn.stream.once('close', () => clearTimeout(timer));
  if (!conn.stream.writableEnded) conn.stream.end();
  conn.stream.resume();
}
