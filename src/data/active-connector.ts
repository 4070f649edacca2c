import net from 'node:net';
import type { SecureContext } from 'node:tls';
import { DataConnectionRefused, clearDataConnection, onFirstBytes, resumptionRefusal, startTlsDataConnection, type DataConnection, type DataSource, type TlsDataStart, type TransferDirection } from './data-connection.js';

export interface ActiveTarget {
  /** The client's address, already checked to be the control connection's peer. */
  host: string;
  /** Already checked to be 1024 or above (no FTP bounce to privileged services). */
  port: number;
  /** Our end of the control connection: the data connection leaves from the same address. */
  localAddress: string;
}

export interface ActiveBinding {
  /** The control session's context, or null for clear data (PROT C, when policy allows it). */
  context: SecureContext | null;
  requireSessionReuse: boolean;
  /** tls.siblingLoginWaitMs (see PassiveBinding). */
  siblingLoginWaitMs: number;
  /** limits.transferChunkBytes: how much received TLS data an upload buffers before reading pauses. */
  chunkBytes: number;
  /** Told once about a refused connection (no or foreign session, failed handshake). */
  onRefused: (refusal: DataConnectionRefused) => void;
}

/**
 * One PORT/EPRT (RFC 959, RFC 2428): the address is remembered and connected to only when the transfer command has
 * been answered with 150, as clients expect. Over that connection we are still the TLS server (RFC 4217 §9 keeps the
 * roles of the control connection), on the control session's SecureContext, so the same session-reuse check as in
 * passive mode binds the data connection to its control session.
 */
export class ActiveConnector implements DataSource {
  readonly #target: ActiveTarget;
  readonly #binding: ActiveBinding;
  readonly #connectTimeoutMs: number;
  /** Aborted by close() before hand-over and by destroy() at any time. */
  readonly #abort = new AbortController();
  #raw: net.Socket | null = null;
  #conn: DataConnection | null = null;
  #used = false;

  constructor(target: ActiveTarget, binding: ActiveBinding, connectTimeoutMs: number) {
    this.#target = target;
    this.#binding = binding;
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  /** Connects out, then (with a context) runs the TLS handshake as server and checks session reuse. Once only. */
  async connection(handshakeTimeoutMs: number, signal: AbortSignal, direction: TransferDirection): Promise<DataConnection> {
    const peer = this.#target.host;
    if (this.#used || this.#abort.signal.aborted) throw new DataConnectionRefused('closed', peer);
    this.#used = true;
    const stop = AbortSignal.any([signal, this.#abort.signal]);
    const raw = await this.#connect(stop);
    raw.setNoDelay(true);
    raw.on('error', () => undefined);
    const context = this.#binding.context;
    const conn = context === null ? clearDataConnection(raw, peer) : await this.#handshake(raw, context, direction, handshakeTimeoutMs, stop);
    this.#conn = conn;
    return conn;
  }

  #connect(stop: AbortSignal): Promise<net.Socket> {
    const { host, port, localAddress } = this.#target;
    return new Promise((resolve, reject) => {
      const raw = net.connect({ host, port, localAddress });
      this.#raw = raw;
      const fail = (reason: 'connect_failed' | 'closed', cause?: unknown) => {
        done();
        raw.destroy();
        reject(new DataConnectionRefused(reason, host, { cause }));
      };
      const onError = (err: Error) => fail('connect_failed', err);
      const onAbort = () => fail('closed');
      const timer = setTimeout(() => fail('connect_failed', new Error('connect timeout')), this.#connectTimeoutMs).unref();
      const done = () => {
        clearTimeout(timer);
        raw.off('error', onError);
        stop.removeEventListener('abort', onAbort);
      };
      raw.once('error', onError);
      stop.addEventListener('abort', onAbort, { once: true });
      raw.once('connect', () => {
        done();
        resolve(raw);
      });
      if (stop.aborted) onAbort();
    });
  }

  #handshake(raw: net.Socket, context: SecureContext, direction: TransferDirection, handshakeTimeoutMs: number, stop: AbortSignal): Promise<DataConnection> {
    const peer = this.#target.host;
    let started: TlsDataStart | null = null;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (refusal: DataConnectionRefused | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stop.removeEventListener('abort', onAbort);
        if (refusal === null && started !== null) return resolve(started.connection());
        if (refusal !== null && refusal.reason !== 'closed') this.#binding.onRefused(refusal);
        started?.socket.destroy();
        raw.destroy();
        reject(refusal ?? new DataConnectionRefused('closed', peer));
      };
      const onAbort = () => finish(new DataConnectionRefused('closed', peer));
      const timer = setTimeout(() => finish(new DataConnectionRefused('handshake_timeout', peer)), handshakeTimeoutMs).unref();
      stop.addEventListener('abort', onAbort, { once: true });
      raw.once('close', () => finish(new DataConnectionRefused('closed', peer)));
      onFirstBytes(raw, (first) => {
        const tlsStart = startTlsDataConnection(raw, context, peer, direction, first, this.#binding.chunkBytes);
        started = tlsStart;
        // A late error after the hand-over (the transfer has its own listeners) must not become an uncaught exception.
        tlsStart.socket.on('error', () => undefined);
        tlsStart.onceSecure(() => {
          void resumptionRefusal(tlsStart, this.#binding.requireSessionReuse, this.#binding.siblingLoginWaitMs).then((refusal) => finish(refusal === null ? null : new DataConnectionRefused(refusal, peer)));
        });
        tlsStart.socket.once('error', (err) => finish(new DataConnectionRefused('handshake_failed', peer, { cause: err })));
        tlsStart.socket.once('close', () => finish(new DataConnectionRefused('closed', peer)));
      });
      if (stop.aborted) onAbort();
    });
  }

  /** Gives up a connection not yet handed to a transfer; one already handed out is the transfer's. Idempotent. */
  close(): void {
    if (this.#conn === null) this.#abort.abort();
  }

  /** Drops everything, including a connection already handed out (ABOR, session end). */
  destroy(): void {
    this.#abort.abort();
    this.#conn?.destroy();
    this.#raw?.destroy();
  }
}
