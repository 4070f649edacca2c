import type { AddressInfo, Server } from 'node:net';
import type { Authorization } from 'acme-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { AcmeError } from './acme-error.js';

export type ChallengeType = Config['acme']['challenges'][number];

/** The challenge fields a responder needs (acme-client's own Challenge type leaves out tls-alpn-01). */
export interface ChallengeInfo {
  type: string;
  token: string;
  url: string;
}

/**
 * Proves control of a name for one challenge type (RFC 8555 section 8). `start`/`stop` bracket one order, so
 * listeners exist only while an order runs; `create`/`remove` are the challengeCreateFn/challengeRemoveFn pair,
 * the only places with external effects. `remove` is always called after `create`, whatever happened in between.
 */
export interface ChallengeResponder {
  readonly type: ChallengeType;
  start(): Promise<void>;
  stop(): Promise<void>;
  create(authz: Authorization, challenge: ChallengeInfo, keyAuthorization: string): Promise<void>;
  remove(authz: Authorization, challenge: ChallengeInfo, keyAuthorization: string): Promise<void>;
}

/** Listens, turning EADDRINUSE/EACCES (port 80 or 443 without privileges) into an error that names the listener. */
export function listenForChallenges(server: Server, type: ChallengeType, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      reject(new AcmeError('responder_failed', `cannot listen for ${type} on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * A responder that answers the CA on a listener of its own (HTTP-01, TLS-ALPN-01): the listener exists from `start`
 * to `stop`, and what it has been told to answer is forgotten at `stop`. Subclasses build the server and keep the
 * answers.
 */
export abstract class ListeningResponder implements ChallengeResponder {
  abstract readonly type: ChallengeType;
  protected readonly log: Logger;
  readonly #host: string;
  readonly #port: number;
  #server: Server | null = null;

  constructor(options: { host: string; port: number; log: Logger }) {
    this.#host = options.host;
    this.#port = options.port;
    this.log = options.log;
  }

  /** The port actually bound (useful with port 0), or null when not listening. */
  get port(): number | null {
    return (this.#server?.address() as AddressInfo | null)?.port ?? null;
  }

  async start(): Promise<void> {
    if (this.#server !== null) return;
    const server = this.createServer();
    await listenForChallenges(server, this.type, this.#host, this.#port);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.forgetAll();
    if (server === null) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // An HTTP client may hold a keep-alive connection open; close() alone would wait for it.
      if ('closeAllConnections' in server && typeof server.closeAllConnections === 'function') server.closeAllConnections();
    });
  }

  protected abstract createServer(): Server;
  protected abstract forgetAll(): void;
  abstract create(authz: Authorization, challenge: ChallengeInfo, keyAuthorization: string): Promise<void>;
  abstract remove(authz: Authorization, challenge: ChallengeInfo, keyAuthorization: string): Promise<void>;
}
