import type net from 'node:net';
import { PROXY_HEADER_MAX_BYTES, parseProxyHeader, type ProxyHeader } from './proxy-protocol.js';

export class ProxyHeaderRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ProxyHeaderRefused';
  }
}

/**
 * Reads the PROXY header that a trusted balancer sends first on `socket`, and leaves every byte after it unread in
 * the socket (paused) for whoever comes next: the control session, or the data connection's TLS layer. Rejects with
 * ProxyHeaderRefused when the header is malformed, too long, or does not arrive within `timeoutMs`; the caller closes.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (err: ProxyHeaderRefused | null, header?: ProxyHeader) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err !== null) reject(err);
      else {
        const rest = buffered.subarray(header!.consumed);
        if (rest.length > 0) socket.unshift(rest);
        resolve(header!);
      }
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const parsed = parseProxyHeader(buffered);
      if (parsed.kind === 'incomplete') {
        if (buffered.length > PROXY_HEADER_MAX_BYTES) finish(new ProxyHeaderRefused('too_long'));
        return;
      }
      if (parsed.kind === 'invalid') finish(new ProxyHeaderRefused(parsed.reason));
      else finish(null, parsed);
    };
    const onClose = () => finish(new ProxyHeaderRefused(buffered.length === 0 ? 'closed_before_header' : 'truncated'));
    const timer = setTimeout(() => finish(new ProxyHeaderRefused(buffered.length === 0 ? 'no_header' : 'truncated')), timeoutMs).unref();
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}
