import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** A TLS socket and whether its client ended with close_notify (false for a native socket in this shape). */
export interface ObservedTls {
  socket: tls.TLSSocket;
  endedCleanly(): boolean;
}

/**
 * Server-side TLS fed through a JS duplex, the shape of ftpsd's upload path (src/data/data-connection.ts, without its
 * bookkeeping), for the floor measurements: the cleartext stream ending before the TCP end reached the TLS layer
 * means the client sent close_notify.
 */
export function observedTls(raw: net.Socket, options: tls.TLSSocketOptions): ObservedTls {
  let tcpEofDelivered = false;
  let closeNotify = false;
  const pipe = new Duplex({
    read: () => void raw.resume(),
    write: (chunk: Buffer, _enc, cb) => void raw.write(chunk, cb),
    final: (cb) => void raw.end(cb),
    destroy: (err, cb) => {
      raw.destroy(err ?? undefined);
      cb(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!pipe.push(chunk)) raw.pause();
  });
  raw.on('end', () => pipe.push(null));
  raw.on('error', (err) => pipe.destroy(err));
  pipe.prependListener('end', () => (tcpEofDelivered = true));
  const socket = new tls.TLSSocket(pipe, options);
  raw.resume();
  const push = socket.push.bind(socket);
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null && !tcpEofDelivered) closeNotify = true;
    return push(chunk, encoding);
  };
  return { socket, endedCleanly: () => closeNotify };
}
