import { createSecureContext, createServer, type SecureContext, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import acme, { type Authorization } from 'acme-client';
import type { Logger } from '../log/logger.js';
import { type ChallengeInfo, type ChallengeResponder, listenForChallenges } from './challenge-responder.js';

/** RFC 8737 section 6.2: the ALPN protocol the CA offers, and the only one this listener accepts. */
const ACME_TLS_ALPN = 'acme-tls/1';

/**
 * RFC 8737: the CA connects with SNI = the domain and ALPN acme-tls/1 and expects a self-signed certificate for
 * that name carrying the acmeIdentifier extension (the SHA-256 of the key authorization). No application data is
 * exchanged: the connection ends right after the handshake.
 */
export class TlsAlpnResponder implements ChallengeResponder {
  readonly type = 'tls-alpn-01' as const;
  readonly #host: string;
  readonly #port: number;
  readonly #log: Logger;
  readonly #contexts = new Map<string, SecureContext>();
  #server: Server | null = null;

  constructor(options: { host: string; port: number; log: Logger }) {
    this.#host = options.host;
    this.#port = options.port;
    this.#log = options.log;
  }

  get port(): number | null {
    return (this.#server?.address() as AddressInfo | null)?.port ?? null;
  }

  async start(): Promise<void> {
    if (this.#server !== null) return;
    const server = createServer({
      ALPNProtocols: [ACME_TLS_ALPN],
      SNICallback: (name, cb) => {
        const context = this.#contexts.get(name.toLowerCase());
        this.#log.debug({ servername: name, known: context !== undefined }, 'acme tls-alpn-01 request');
        if (context === undefined) cb(new Error(`no tls-alpn-01 challenge for ${name}`));
        else cb(null, context);
      },
    }, (socket) => socket.end());
    // A handshake refused for an unknown name is expected noise, not a server error.
    server.on('tlsClientError', () => {});
    await listenForChallenges(server, this.type, this.#host, this.#port);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#contexts.clear();
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async create(authz: Authorization, _challenge: ChallengeInfo, keyAuthorization: string): Promise<void> {
    const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey());
    this.#contexts.set(authz.identifier.value.toLowerCase(), createSecureContext({ key, cert }));
  }

  async remove(authz: Authorization): Promise<void> {
    this.#contexts.delete(authz.identifier.value.toLowerCase());
  }
}
