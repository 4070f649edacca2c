import net from 'node:net';
import type { SecureContext } from 'node:tls';
import { readProxyHeader, ProxyHeaderRefused } from '../cluster/proxy-header-reader.js';
import { parseProxyHeader } from '../cluster/proxy-protocol.js';
import type { CidrSet } from '../defender/cidr.js';
import { unmapIPv4 } from '../protocol/address-text.js';
import type { PassiveOwner, PassivePortPool } from './passive-ports.js';
import { DataConnectionRefused, clearDataConnection, onFirstBytes, resumptionRefusal, startTlsDataConnection, type DataConnection, type TlsDataStart, type TransferDirection } from './data-connection.js';

export interface PassiveBinding {
  /** Only this address may connect: the control connection's peer. */
  expectedPeer: string;
  /** The control session's context, or null for clear data (PROT C, when policy allows it). */
  context: SecureContext | null;
  requireSessionReuse: boolean;
  /** tls.siblingLoginWaitMs: how long a sibling session's ticket waits for that sibling's login to complete. */
  siblingLoginWaitMs: number;
  /** limits.transferChunkBytes: how much received TLS data an upload buffers before reading pauses. */
  chunkBytes: number;
  /** Told once about a refused connection (wrong address, no or foreign session, failed handshake). */
  onRefused: (refusal: DataConnectionRefused) => void;
  /**
   * proxyProtocol.passive: the balancers that forward this node's passive range and name the client in a PROXY
   * header (then the address check compares that client); null when data connections come straight from clients.
   */
  proxy: { balancers: CidrSet; headerTimeoutMs: number } | null;
}

export interface PassiveTimeouts {
  /** pasv.acceptTimeoutMs: from PASV/EPSV until the client connects. */
  acceptMs: number;
  /** pasv.idleListenerTimeoutMs: from PASV/EPSV until the transfer command; then the port and any connection go. */
  idleMs: number;
  /** tls.handshakeTimeoutMs: from the client's connect until its TLS handshake is done. */
  handshakeMs: number;
}

/**
 * One PASV/EPSV: a listener that accepts exactly one connection, then closes. The connection is checked against the
 * session binding as soon as it arrives (address at accept, resumption once the TLS handshake completes); the result
 * waits for the transfer command, which may come before or after the client connects.
 */
export class PassiveListener {
  readonly port: number;
  readonly #server: net.Server;
  readonly #binding: PassiveBinding;
  #result: Promise<DataConnection>;
  #settle!: { resolve: (c: DataConnection) => void; reject: (e: DataConnectionRefused) => void };
  #acceptTimer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  readonly #handshakeMs: number;
  /** The transfer command did not come in time: everything was dropped and a late one is told so. */
  #expired = false;
  #socket: net.Socket | null = null;
  #tlsStart: TlsDataStart | null = null;
  /** Set by the transfer command; null until it comes, which may be after the client started TLS. */
  #direction: TransferDirection | null = null;
  #closed = false;
  #settled = false;
  /**
   * The TLS handshake completed. From then on the binding check decides, not the socket's end: a client may finish
   * the handshake and close at once (an empty upload: close_notify and FIN right behind its Finished), and its
   * connection must still reach the transfer, which tells a clean end from a cut one.
   */
  #handshakeDone = false;

  private constructor(server: net.Server, port: number, binding: PassiveBinding, handshakeMs: number) {
    this.#server = server;
    this.port = port;
    this.#binding = binding;
    this.#handshakeMs = handshakeMs;
    this.#result = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    // Nobody may be awaiting yet; a refusal before the transfer command must not be an unhandled rejection.
    this.#result.catch(() => undefined);
  }

  static async open(pool: PassivePortPool, host: string, owner: PassiveOwner, binding: PassiveBinding, timeouts: PassiveTimeouts): Promise<PassiveListener> {
    const server = net.createServer({ pauseOnConnect: true });
    const port = await pool.listen(server, host, owner);
    const listener = new PassiveListener(server, port, binding, timeouts.handshakeMs);
    server.on('connection', (s) => listener.#onConnection(s));
    server.on('error', () => listener.close());
    listener.#acceptTimer = setTimeout(() => listener.#refuse('accept_timeout', ''), timeouts.acceptMs).unref();
    listener.#idleTimer = setTimeout(() => listener.#expire(), timeouts.idleMs).unref();
    return listener;
  }

  #onConnection(socket: net.Socket): void {
    const connectedFrom = unmapIPv4(socket.remoteAddress ?? '');
    if (this.#socket !== null || this.#closed) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    this.#stopListening();
    socket.on('error', () => undefined);
    const proxy = this.#binding.proxy;
    if (proxy === null || !proxy.balancers.has(connectedFrom)) {
      this.#admit(socket, connectedFrom, false);
      return;
    }
    // The balancer speaks first; the client's address in its header is what the address check compares. A missing,
    // malformed or truncated header, or a health check (LOCAL) on a passive port, ends the connection.
    readProxyHeader(socket, proxy.headerTimeoutMs).then(
      (header) => {
        if (header.kind === 'proxied') this.#admit(socket, unmapIPv4(header.source.ip), true);
        else this.#refuse('proxy_header', connectedFrom, new ProxyHeaderRefused('local_on_passive_port'));
      },
      (err: unknown) => this.#refuse('proxy_header', connectedFrom, err),
    );
  }

  /** Checks a connection whose client address is known (the socket's peer, or a trusted PROXY header's source). */
  #admit(socket: net.Socket, peer: string, proxied: boolean): void {
    // The listener gave up (idle timeout, ABOR) while the header was on its way.
    if (this.#settled) {
      socket.destroy();
      return;
    }
    if (peer !== unmapIPv4(this.#binding.expectedPeer)) {
      socket.destroy();
      this.#refuse('wrong_address', peer);
      return;
    }
    socket.setNoDelay(true);
    if (this.#binding.context === null) {
      this.#settled = true;
      this.#settle.resolve(clearDataConnection(socket, peer));
      socket.resume();
      return;
    }
    socket.once('close', () => this.#closedBeforeHandshake(peer));
    // From the connect on: a client that connects and sends nothing holds a socket until this fires.
    this.#handshakeTimer = setTimeout(() => this.#refuse('handshake_timeout', peer), this.#handshakeMs).unref();
    const context = this.#binding.context;
    onFirstBytes(socket, (first) => {
      // A PROXY header from a peer that is not a trusted balancer (or a second one): never believed, never handed to TLS.
      if (parseProxyHeader(first).kind !== 'invalid') {
        this.#refuse('proxy_header', peer, new ProxyHeaderRefused(proxied ? 'second_header' : 'untrusted'));
        return;
      }
      // TLS starts on the client's first bytes, never held for the transfer command: curl sends its ClientHello before
      // RETR and waits about 200 ms more when the handshake is held. Without the command the direction is unknown, and
      // the connection gets the TLS path that suits both.
      const started = startTlsDataConnection(socket, context, peer, this.#direction, first, this.#binding.chunkBytes);
      this.#tlsStart = started;
      started.socket.once('secure', () => (this.#handshakeDone = true));
      started.onceSecure(() => {
        this.#clearHandshakeTimer();
        void resumptionRefusal(started, this.#binding.requireSessionReuse, this.#binding.siblingLoginWaitMs).then((refusal) => {
          if (this.#settled) return;
          if (refusal !== null) {
            this.#refuse(refusal, peer);
            return;
          }
          this.#settled = true;
          this.#settle.resolve(started.connection());
        });
      });
      started.socket.once('error', (err) => {
        // After the handshake an error (our close_notify written to a client already gone) is the transfer's to see.
        if (!this.#handshakeDone) this.#refuse('handshake_failed', peer, err);
      });
      started.socket.once('close', () => this.#closedBeforeHandshake(peer));
    });
  }

  /**
   * Waits for the verified connection. A handshake clock runs from the connect and another from here: ftplib
   * connects at PASV time but starts TLS only after our 150 reply. `direction` picks the TLS path if the client has
   * not started TLS yet.
   */
  async connection(handshakeTimeoutMs: number, signal: AbortSignal, direction: TransferDirection): Promise<DataConnection> {
    if (this.#expired) throw new DataConnectionRefused('idle_timeout', '');
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#direction = direction;
    const timer = setTimeout(() => this.#refuse(this.#socket === null ? 'accept_timeout' : 'handshake_timeout', ''), handshakeTimeoutMs).unref();
    const onAbort = () => this.#refuse('closed', '');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#result;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The security-relevant outcome, for logging, without waiting. */
  get peerSeen(): boolean {
    return this.#socket !== null;
  }

  #closedBeforeHandshake(peer: string): void {
    if (!this.#handshakeDone) this.#refuse('closed', peer);
  }

  /** No transfer command within pasv.idleListenerTimeoutMs: the port and any connection, verified or not, go. */
  #expire(): void {
    this.#idleTimer = null;
    this.#expired = true;
    this.#refuse('idle_timeout', '');
    this.#tlsStart?.socket.destroy();
    this.#socket?.destroy();
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
  }

  #refuse(reason: DataConnectionRefused['reason'], peer: string, cause?: unknown): void {
    this.#clearHandshakeTimer();
    // Once settled (the normal end of every transfer ends here too), nobody reads a refusal: don't build one.
    if (!this.#settled) {
      const refusal = new DataConnectionRefused(reason, peer, { cause });
      if (reason !== 'closed' && reason !== 'accept_timeout' && reason !== 'idle_timeout') this.#binding.onRefused(refusal);
      this.#settled = true;
      this.#settle.reject(refusal);
      // Nothing was handed to a transfer: a connection that timed out or failed its checks is ours to close.
      this.#tlsStart?.socket.destroy();
      this.#socket?.destroy();
    }
    this.close();
  }

  #stopListening(): void {
    if (this.#acceptTimer !== null) clearTimeout(this.#acceptTimer);
    this.#acceptTimer = null;
    if (this.#server.listening) this.#server.close();
  }

  /** Closes the listener; a connection not yet handed to a transfer is dropped. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#clearHandshakeTimer();
    this.#stopListening();
    if (!this.#settled) {
      this.#settled = true;
      this.#settle.reject(new DataConnectionRefused('closed', ''));
    }
  }

  /** Drops everything including a connection already handed out (ABOR, session end). */
  destroy(): void {
    this.close();
    this.#tlsStart?.socket.destroy();
    this.#socket?.destroy();
  }
}
