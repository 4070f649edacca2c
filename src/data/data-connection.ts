import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { offeredResumption, readResumptionOffer } from '../tls/client-hello.js';
import { describeTls, sessionIdCache, type TlsDescription } from '../tls/session-context.js';
import { confirmTicketOrigin, renewTicketsOnResumption, takeTicketOrigin, type TicketOrigin } from '../tls/session-tickets.js';

/** Why a data connection was refused; stable names for logs, metrics and the defender. */
export type RefusalReason = 'wrong_address' | 'proxy_header' | 'no_ticket_offered' | 'foreign_session' | 'handshake_failed' | 'accept_timeout' | 'idle_timeout' | 'handshake_timeout' | 'connect_failed' | 'closed';

export class DataConnectionRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    readonly peer: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
    this.name = 'DataConnectionRefused';
  }
}

/** A data connection that passed every check; `stream` carries the file bytes. */
export interface DataConnection {
  readonly stream: Duplex;
  readonly peer: string;
  readonly tls: TlsDescription | null;
  /** Set when the TLS session was resumed from a sibling control session's ticket (same user, same address). */
  readonly siblingSession: string | null;
  /**
   * True once the peer ended the stream: with TLS only when it sent close_notify before the TCP FIN. An upload that
   * ends without it may be truncated by anyone on the path (or a killed client) and is not committed.
   */
  endedCleanly(): boolean;
  destroy(): void;
}

/**
 * Where a transfer's data connection comes from: a passive listener (PASV/EPSV) or an active connector (PORT/EPRT).
 * Pending until the transfer command asks for the connection, at most once.
 */
export interface DataSource {
  /** The verified connection; rejects with DataConnectionRefused. The handshake clock starts here. */
  connection(handshakeTimeoutMs: number, signal: AbortSignal, direction: TransferDirection): Promise<DataConnection>;
  /** Gives up what was not handed to a transfer yet. Idempotent. */
  close(): void;
  /** Drops everything, including a connection already handed out. */
  destroy(): void;
}

/**
 * Which way a transfer's bytes go. It decides how the data connection's TLS layer is built: a download (RETR, LIST,
 * NLST, MLSD) runs TLS natively on the socket; an upload needs to see whether the client ended with close_notify, which
 * only the observed path can tell (see startTlsDataConnection).
 */
export type TransferDirection = 'upload' | 'download';

/**
 * Calls back once with the first bytes the client sends on a raw data socket (its ClientHello), leaving them unread in
 * the socket for the TLS layer. Until then nothing is decided: the transfer command usually arrives first and says
 * which TLS path the connection gets.
 */
export function onFirstBytes(raw: net.Socket, cb: (first: Buffer) => void): void {
  raw.once('data', (chunk: Buffer) => {
    raw.pause();
    raw.unshift(chunk);
    cb(chunk);
  });
  raw.resume();
}

export interface TlsDataStart {
  socket: TLSSocket;
  /** The ClientHello offered a session (ticket or PSK): a failed resumption then means another session's ticket. */
  offeredResumption(): boolean;
  /** Who minted the resumed ticket; read once, in the handshake's 'secure' event. */
  origin(): TicketOrigin | null;
  /** Whether the resumed ticket binds this connection to its control session (see confirmTicketOrigin). */
  originConfirmed(waitMs: number): Promise<boolean>;
  /**
   * Calls back once the handshake is over, OpenSSL's own work included. Node emits 'secure' from inside OpenSSL's
   * handshake, before a TLS 1.3 server has written the session ticket it renews on resumption; application data
   * written then (a promise settled in 'secure' runs its continuation right there) ends up ahead of that ticket, and
   * OpenSSL clients such as Python's fail the connection with decode_error. One turn of the event loop later the
   * handshake is complete.
   */
  onceSecure(cb: () => void): void;
  connection(): DataConnection;
}

/**
 * The session binding, once the data connection's handshake is done: null when it may carry the transfer, else why
 * not (it did not resume the control session: no session offered at all, or another session's). A sibling's ticket
 * is confirmed here, waiting at most `siblingLoginWaitMs` for a sibling that is still logging in.
 */
export async function resumptionRefusal(started: TlsDataStart, requireSessionReuse: boolean, siblingLoginWaitMs: number): Promise<RefusalReason | null> {
  if (!requireSessionReuse) return null;
  if (!started.socket.isSessionReused()) return started.offeredResumption() ? 'foreign_session' : 'no_ticket_offered';
  return (await started.originConfirmed(siblingLoginWaitMs)) ? null : 'foreign_session';
}

/**
 * Starts server-side TLS on an accepted data socket, on the control session's SecureContext (its own ticket keys and
 * session-id cache, so only this control session's TLS session resumes). `first` is the ClientHello already seen by
 * onFirstBytes and still unread in the socket.
 *
 * Downloads take the native path: OpenSSL reads and writes the socket's handle directly. Uploads take the observed
 * path: the TLS layer is fed through a small JS duplex so that we see when the raw TCP end reaches it; if the
 * cleartext stream ended before that, the client sent close_notify; if only then, the upload was cut off. The observed
 * path copies every encrypted byte through JS, which costs a download 10-20 % more CPU (twice as much when V8 runs
 * with its default young generation: garbage collection of the copies), so it is used only where its answer matters;
 * a client that starts TLS before its transfer command gets it too, as the direction is not known yet then.
 */
export function startTlsDataConnection(raw: net.Socket, context: SecureContext, peer: string, direction: TransferDirection | null, first: Buffer, readBufferBytes: number): TlsDataStart {
  const offer = readResumptionOffer(first);
  // A connection known to carry an upload gets no renewed ticket: the client would leave it unread (see session-tickets.ts).
  renewTicketsOnResumption(context, direction !== 'upload');
  const options: tls.TLSSocketOptions = { isServer: true, secureContext: context };
  // The session-ID cache (TLS 1.2 clients resuming without a ticket) is looked up through Node's JavaScript ClientHello
  // parser, which holds the handshake for a round through JS; a hello offering a ticket or a TLS 1.3 PSK resumes
  // from that and needs neither.
  if (offer === null || !(offer.psk || offer.ticket)) options.server = sessionIdCache(context);
  // Not known yet (the client started TLS before its transfer command): the observed path suits both directions.
  const layer = direction === 'download' ? nativeTls(raw, options) : observedTls(raw, options, readBufferBytes);
  const { socket } = layer;
  // Errors reach whoever uses the connection (the listener during the handshake, pipeline() during a transfer); a
  // late one (a close_notify written after the client already closed) must not become an uncaught exception.
  socket.on('error', () => undefined);
  let origin: TicketOrigin | null | undefined;
  const takeOrigin = (): TicketOrigin | null => (origin ??= takeTicketOrigin(context));
  return {
    socket,
    offeredResumption: () => offeredResumption(offer),
    origin: takeOrigin,
    originConfirmed: (waitMs) => confirmTicketOrigin(context, takeOrigin(), waitMs),
    onceSecure: (cb) => {
      socket.once('secure', () => {
        // Who minted the ticket is known only now: read it before another handshake of this session could run.
        takeOrigin();
        setImmediate(cb);
      });
    },
    connection: () => {
      const from = socket.isSessionReused() ? takeOrigin() : null;
      return { stream: socket, peer, tls: describeTls(socket), siblingSession: from?.kind === 'sibling' ? from.sessionId : null, endedCleanly: layer.endedCleanly, destroy: layer.destroy };
    },
  };
}

interface TlsLayer {
  socket: TLSSocket;
  endedCleanly(): boolean;
  destroy(): void;
}

/** OpenSSL on the socket's handle. The end of the stream is not observed: nothing received this way is kept. */
function nativeTls(raw: net.Socket, options: tls.TLSSocketOptions): TlsLayer {
  const socket = new tls.TLSSocket(raw, options);
  return { socket, endedCleanly: () => false, destroy: () => socket.destroy() };
}

/** TLS fed through a JS duplex, so that the TCP end and a close_notify can be told apart. */
function observedTls(raw: net.Socket, options: tls.TLSSocketOptions, readBufferBytes: number): TlsLayer {
  let tcpEofDelivered = false;
  let rawEnded = false;
  let closeNotify = false;
  // A buffer of a few raw reads: a smaller one would stop and restart the socket's reading for every 64 KiB read.
  const pipe = new Duplex({
    readableHighWaterMark: readBufferBytes,
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      // After the client's FIN the socket refuses writes (EPIPE) with an error whose stack the stream machinery
      // formats: a millisecond per upload, as the TLS layer answers every client's close_notify with its own. The
      // same refusal, without the stack.
      if (rawEnded && !raw.allowHalfOpen) {
        raw.destroy();
        cb(peerHungUp());
        return;
      }
      raw.write(chunk, cb);
    },
    final(cb) {
      raw.end(cb);
    },
    destroy(err, cb) {
      raw.destroy(err ?? undefined);
      cb(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!pipe.push(chunk)) raw.pause();
  });
  raw.on('end', () => {
    rawEnded = true;
    pipe.push(null);
  });
  // Runs before the TLS layer's own 'end' listener, which hands the TCP EOF to TLS: from here on, an end of the
  // cleartext stream comes from the TCP EOF; before it, only from a close_notify in the data already delivered.
  pipe.prependListener('end', () => (tcpEofDelivered = true));
  raw.on('error', (err) => pipe.destroy(err));
  // After a normal TCP end the socket closes at once, while the TLS layer may still be working through buffered
  // bytes (a slow disk): destroying the duplex then would cut off the tail of a complete upload.
  raw.on('close', () => {
    if (!rawEnded) pipe.destroy();
  });
  const socket: TLSSocket = new tls.TLSSocket(pipe, options);
  // The TLS layer ends its cleartext stream with push(null) at the very moment it decrypts a close_notify, or when
  // the TCP EOF reaches it. Comparing 'end' events instead is racy: under backpressure (slow disk) the TLS layer
  // reads the close_notify long after TCP has ended, and a complete upload would be taken for a truncated one.
  const push = socket.push.bind(socket);
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null && !tcpEofDelivered) closeNotify = true;
    return push(chunk, encoding);
  };
  raw.resume();
  return {
    socket,
    endedCleanly: () => closeNotify,
    destroy: () => {
      socket.destroy();
      raw.destroy();
    },
  };
}

function peerHungUp(): Error {
  const err = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });
  Object.defineProperty(err, 'stack', { value: `Error: ${err.message}`, writable: true, configurable: true });
  return err;
}

export function clearDataConnection(raw: net.Socket, peer: string): DataConnection {
  let ended = false;
  raw.on('end', () => (ended = true));
  return { stream: raw, peer, tls: null, siblingSession: null, endedCleanly: () => ended, destroy: () => raw.destroy() };
}
