import type { Server } from 'node:net';
import type { Authorization } from 'acme-client';
import type { Config } from '../config/schema.js';
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
