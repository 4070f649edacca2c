import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { PasswordHasher } from '../auth/password-hasher.js';
import type { ServerHandle } from '../server.js';
import { recordChange } from '../store/change-log.js';
import type { AdminRole } from '../store/schema.js';

/** Who made a request, once authenticated. */
export interface Principal {
  name: string;
  role: AdminRole;
  /** How the request proved it: a login token (API), the web admin's cookie, or an API key. */
  via: 'token' | 'cookie' | 'api_key';
  mustChangePassword: boolean;
  /** SHA-256 of the login token (token and cookie logins), to end it at logout. */
  tokenHash: string | null;
  /** The web admin's CSRF token for this login (cookie logins). */
  csrf: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** What the route needs (see auth/roles.ts); 'public' routes need no login. */
    access?: import('./auth/roles.js').Access | 'public';
    /** Allowed while the account must still change its one-time password. */
    beforePasswordChange?: boolean;
  }
}

/** What routes and pages share: the server's control surface, the log, and how changes are recorded. */
export interface AdminContext {
  readonly server: ServerHandle;
  readonly log: Logger;
  /** argon2id for admin passwords, capped apart from the FTP logins' hasher. */
  readonly hasher: PasswordHasher;
}

/** The principal of an authenticated route (the auth hook guarantees one). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new Error('route reached without a principal');
  return request.principal;
}

/** The change log's actor of a request: "admin:NAME". */
export function actorOf(request: FastifyRequest): string {
  return `admin:${principalOf(request).name}`;
}

/**
 * Records a change that is not a partner entity (bans, sessions, accounts, keys, certificates, reloads) in the store's
 * change log, the same path partner changes take, and has the server write it to its audit trail at once.
 */
export async function recordAdminChange(
  ctx: AdminContext,
  request: FastifyRequest,
  change: { action: string; kind: string; name: string; before?: unknown; after?: unknown },
): Promise<void> {
  await recordChange(ctx.server.store.db, { actor: actorOf(request), ip: request.ip, action: change.action, entityKind: change.kind, entityName: change.name, before: change.before, after: change.after });
  await ctx.server.syncStore();
}
