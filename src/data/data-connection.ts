import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { offeredResumption, readResumptionOffer } from '../tls/client-hello.js';
import { describeTls, sessionIdCache, type TlsDescription } from '../tls/session-context.js';

/** Why a data connection was refused; stable names for logs, metrics and the defender. */
export type RefusalReason = 'wrong_address' | 'no_ticket_offered' | 'foreign_session' | 'handshake_failed' | 'accept_timeout' | 'handshake_timeout' | 'connect_failed' | 'closed';

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
  connection(handshakeTimeoutMs: number, signal: AbortSignal): Promise<DataConnection>;
  /** Gives up what was not handed to a transfer yet. Idempotent. */
  close(): void;
  /** Drops everything, including a connection already handed out. */
  destroy(): void;
}

/**
 * Wraps an accepted socket in server-side TLS on the control session's SecureContext. The TLS layer is fed through a
 * small JS duplex rather than the socket's handle so that we see when the raw TCP end reaches the TLS layer: if the
 * cleartext stream ended before that, the client sent close_notify; if only then, the upload was cut off.
 */
export function startTlsDataConnection(raw: net.Socket, context: SecureContext, peer: string) {
  let tcpEofDelivered = false;
  let closeNotify = false;
  let offer: ReturnType<typeof readResumptionOffer> = null;
  let first = true;
  const pipe = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc, cb) {
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
    if (first) {
      first = false;
      offer = readResumptionOffer(chunk);
    }
    if (!pipe.push(chunk)) raw.pause();
  });
  let rawEnded = false;
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
  const socket: TLSSocket = new tls.TLSSocket(pipe, { isServer: true, secureContext: context, server: sessionIdCache(context) });
  // Errors reach whoever uses the connection (the listener during the handshake, pipeline() during a transfer); a
  // late one (a close_notify written after the client already closed) must not become an uncaught exception.
  socket.on('error', () => undefined);
  // The TLS layer ends its cleartext stream with push(null) at the very moment it decrypts a close_notify, or when
  // the TCP EOF reaches it. Comparing 'end' events instead is racy: under backpressure (slow disk) the TLS layer
  // reads the close_notify long after TCP has ended, and a complete upload would be taken for a truncated one.
  const push = socket.push.bind(socket);
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null && !tcpEofDelivered) closeNotify = true;
    return push(chunk, encoding);
  };
  return {
    socket,
    offeredResumption: () => offeredResumption(offer),
    connection(): DataConnection {
      return {
        stream: socket,
        peer,
        tls: describeTls(socket),
        endedCleanly: () => closeNotify,
        destroy: () => {
          socket.destroy();
          raw.destroy();
        },
      };
    },
  };
}

export function clearDataConnection(raw: net.Socket, peer: string): DataConnection {
  let ended = false;
  raw.on('end', () => (ended = true));
  return { stream: raw, peer, tls: null, endedCleanly: () => ended, destroy: () => raw.destroy() };
}
