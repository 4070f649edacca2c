import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { redactUrl } from '../../store/open-store.js';
import type { Config } from '../../config/schema.js';
import { recordAdminChange, type AdminContext } from '../context.js';
import { bool, int, responses, str, strList } from '../schemas.js';

// The server itself: health, version, the effective configuration (secrets left out) and a reload (what SIGHUP does).

const pkg = createRequire(import.meta.url)('../../../package.json') as { name: string; version: string };

/** Keys whose values are secrets wherever they appear (ACME EAB key, S3 secret keys, and any later one so named). */
const SECRET_KEY = /secret|password|hmackey$|token$/i;

/** The configuration without its secrets: secret-named values replaced, the store URL's password hidden. */
export function redactedConfig(config: Config): Record<string, unknown> {
  const walk = (value: unknown, key: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v, key));
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    if (typeof value === 'string' && value !== '' && SECRET_KEY.test(key)) return '[redacted]';
    return value;
  };
  const shown = walk(config, '') as Record<string, unknown> & { store: Config['store'] };
  return { ...shown, store: { ...shown.store, url: config.store.url === '' ? '' : redactUrl(config.store.url) } };
}

export function systemRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get(
    '/api/v1/health',
    {
      config: { access: 'read' },
      schema: { tags: ['server'], summary: 'Readiness (as /readyz) and counts', response: responses({ 200: { type: 'object', properties: { ready: bool, problems: strList, sessions: int, uptimeSeconds: int, bans: int } } }) },
    },
    () => {
      const r = ctx.server.readiness();
      return { ...r, sessions: ctx.server.sessionCount(), uptimeSeconds: Math.floor((Date.now() - ctx.server.startedAt) / 1000), bans: ctx.server.defender?.activeBanCount() ?? 0 };
    },
  );

  app.get('/api/v1/version', { config: { access: 'read' }, schema: { tags: ['server'], summary: 'Software version', response: responses({ 200: { type: 'object', properties: { name: str, version: str, node: str } } }) } }, () => ({
    name: pkg.name,
    version: pkg.version,
    node: process.version,
  }));

  app.get(
    '/api/v1/config',
    { config: { access: 'read' }, schema: { tags: ['server'], summary: 'The effective configuration, secrets left out', response: responses({ 200: { type: 'object', additionalProperties: true } }) } },
    () => redactedConfig(ctx.server.config),
  );

  app.post(
    '/api/v1/reload',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['server'],
        summary: 'Reload as SIGHUP does: configuration, users and certificate; open sessions are untouched',
        response: responses({ 200: { type: 'object', properties: { configApplied: strList, needsRestart: strList, configProblems: strList, usersAdded: strList, usersRemoved: strList, certificateChanged: bool } } }),
      },
    },
    async (request) => {
      const r = await ctx.server.reload();
      const out = {
        configApplied: r.config.kind === 'applied' ? r.config.changes.applied : [],
        needsRestart: r.config.kind === 'applied' ? r.config.changes.needsRestart : [],
        configProblems: r.config.kind === 'invalid' ? r.config.problems : [],
        usersAdded: r.users.kind === 'reloaded' ? r.users.added : [],
        usersRemoved: r.users.kind === 'reloaded' ? r.users.removed : [],
        certificateChanged: r.certificateChanged,
      };
      await recordAdminChange(ctx, request, { action: 'reload', kind: 'server', name: 'config', after: out });
      return out;
    },
  );

  app.get(
    '/api/v1/transfers/recent',
    {
      config: { access: 'read' },
      schema: {
        tags: ['sessions'],
        summary: 'The latest transfers (their audit records), newest first',
        response: responses({ 200: { type: 'array', items: { type: 'object', additionalProperties: true, properties: { time: str, user: str, ip: str, direction: str, path: str, bytes: int, result: str } } } }),
      },
    },
    () => ctx.server.recentTransfers(),
  );
}
