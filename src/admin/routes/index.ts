import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { adminsRoutes } from './admins.js';
import { apiKeysRoutes } from './api-keys.js';
import { auditRoutes } from './audit.js';
import { authRoutes } from './auth.js';
import { bansRoutes } from './bans.js';
import { eventsRoutes } from './events.js';
import { certificatesRoutes } from './certificates.js';
import { foldersRoutes } from './folders.js';
import { groupsRoutes } from './groups.js';
import { partnersRoutes } from './partners.js';
import { permissionsRoutes } from './permissions.js';
import { policiesRoutes } from './policies.js';
import { quotaRoutes } from './quota.js';
import { retentionRoutes } from './retention.js';
import { sessionsRoutes } from './sessions.js';
import { systemRoutes } from './system.js';
import { usersRoutes } from './users.js';

/**
 * One module per resource. Each registers its routes under /api/v1 with full schemas (body, params, querystring,
 * responses), `config.access` naming what the route needs (see auth/roles.ts) and a tag, which become the OpenAPI
 * document; test/admin/openapi.test.ts fails for a route that lacks any of them.
 */
export interface RouteModule {
  /** The OpenAPI tag of its routes. */
  tag: string;
  description: string;
  register(app: FastifyInstance, ctx: AdminContext): void;
}

export const ROUTE_MODULES: readonly RouteModule[] = [
  { tag: 'auth', description: "Login tokens, the account's own password and second factor (TOTP)", register: authRoutes },
  { tag: 'admins', description: 'Admin accounts and their roles', register: adminsRoutes },
  { tag: 'api-keys', description: 'API keys for automation', register: apiKeysRoutes },
  { tag: 'users', description: 'FTP users of the partner model', register: usersRoutes },
  { tag: 'groups', description: 'Groups users inherit from', register: groupsRoutes },
  { tag: 'folders', description: 'Named storage locations', register: foldersRoutes },
  { tag: 'permissions', description: 'Per-path permissions of users and groups', register: permissionsRoutes },
  { tag: 'policies', description: 'Policies of users and groups', register: policiesRoutes },
  { tag: 'partners', description: 'New partner flow; the partner model as a partners file', register: partnersRoutes },
  { tag: 'sessions', description: 'Live sessions, their transfers, kicking', register: sessionsRoutes },
  { tag: 'bans', description: "The defender's bans", register: bansRoutes },
  { tag: 'quota', description: 'Quota usage and rescans', register: quotaRoutes },
  { tag: 'retention', description: 'Folder retention runs', register: retentionRoutes },
  { tag: 'certificates', description: 'Certificate status and renewal', register: certificatesRoutes },
  { tag: 'audit', description: 'Audit trail search and verification', register: auditRoutes },
  { tag: 'server', description: 'Health, version, configuration, reload', register: systemRoutes },
  { tag: 'events', description: 'Event actions, rules and deliveries (retry, counts)', register: eventsRoutes },
];
