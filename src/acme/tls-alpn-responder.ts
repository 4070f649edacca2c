import { createSecureContext, createServer, type SecureContext, type Server } from 'node:tls';
import acme, { type Authorization } from 'acme-client';
import { type ChallengeInfo, ListeningResponder } from './challenge-responder.js';

/** RFC 8737 section 6.2: the ALPN protocol the CA offers, and the only one this listener accepts. */
const ACME_TLS_ALPN = 'acme-tls/1';

/**
 * RFC 8737: the CA connects with SNI = the domain and ALPN acme-tls/1 and expects a self-signed certificate for
 * that name carrying the acmeIdentifier extension (the SHA-256 of the key authorization). No application data is
 * exchanged: the connection ends right after the handshake.
 */
export class TlsAlpnResponder extends ListeningResponder {
  readonly type = 'tls-alpn-01' as const;
  readonly #contexts = new Map<string, SecureContext>();

  protected createServer(): Server {
    const server = createServer(
      {
        ALPNProtocols: [ACME_TLS_ALPN],
        SNICallback: (name, cb) => {
          const context = this.#contexts.get(name.toLowerCase());
          this.log.debug({ servername: name, known: context !== undefined }, 'acme tls-alpn-01 request');
          if (context === undefined) cb(new Error(`no tls-alpn-01 challenge for ${name}`));
          else cb(null, context);
        },
      },
      (socket) => socket.end(),
    );
    // A handshake refused for an unknown name is expected noise, not a server error.
    server.on('tlsClientError', () => {});
    return server;
  }

  protected forgetAll(): void {
    this.#contexts.clear();
  }

  async create(authz: Authorization, _challenge: ChallengeInfo, keyAuthorization: string): Promise<void> {
    const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey());
    this.#contexts.set(authz.identifier.value.toLowerCase(), createSecureContext({ key, cert }));
  }

  async remove(authz: Authorization): Promise<void> {
    this.#contexts.delete(authz.identifier.value.toLowerCase());
  }
}
