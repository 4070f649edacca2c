import { createServer, type Server } from 'node:http';
import type { Authorization } from 'acme-client';
import { type ChallengeInfo, ListeningResponder } from './challenge-responder.js';

const CHALLENGE_PATH = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/;

/**
 * RFC 8555 section 8.3: the CA fetches http://<domain>/.well-known/acme-challenge/<token> and expects the key
 * authorization as the body. Only paths of that shape with a token of a running order are answered; anything else
 * is 404, so the listener reveals nothing while it is up, and it is up only while an order runs.
 */
export class Http01Responder extends ListeningResponder {
  readonly type = 'http-01' as const;
  readonly #tokens = new Map<string, string>();

  protected createServer(): Server {
    return createServer((req, res) => {
      const token = CHALLENGE_PATH.exec(req.url ?? '')?.[1];
      const keyAuthorization = req.method === 'GET' && token !== undefined ? this.#tokens.get(token) : undefined;
      this.log.debug({ path: req.url, remote: req.socket.remoteAddress, known: keyAuthorization !== undefined }, 'acme http-01 request');
      if (keyAuthorization === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(keyAuthorization);
    });
  }

  protected forgetAll(): void {
    this.#tokens.clear();
  }

  async create(_authz: Authorization, challenge: ChallengeInfo, keyAuthorization: string): Promise<void> {
    this.#tokens.set(challenge.token, keyAuthorization);
  }

  async remove(_authz: Authorization, challenge: ChallengeInfo): Promise<void> {
    this.#tokens.delete(challenge.token);
  }
}
