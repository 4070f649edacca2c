import type { FastifyInstance } from 'fastify';
import { allLocations } from '../../partners/locations.js';
import { scanQuota } from '../../partners/housekeeping.js';
import { loadPartners } from '../../store/partner-repo.js';
import { listUsage } from '../../store/quota-repo.js';
import { recordAdminChange, type AdminContext } from '../context.js';
import { int, nullableInt, responses, str, strList } from '../schemas.js';

// Quota usage per storage location (a home, a folder, a templated folder per user) against its limits, and a rescan
// that counts every location anew (as `ftpsd quota scan`).

const usageSchema = {
  type: 'object',
  properties: { scope: str, users: strList, bytes: int, files: int, quotaBytes: nullableInt, quotaFiles: nullableInt, counted: { type: 'boolean' } },
} as const;

export function quotaRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/api/v1/quota', { config: { access: 'read' }, schema: { tags: ['quota'], summary: 'Usage and limits of every storage location', response: responses({ 200: { type: 'array', items: usageSchema } }) } }, async () => {
    const db = ctx.server.store.db;
    const usage = new Map((await listUsage(db)).map((u) => [u.scope, u]));
    return allLocations(await loadPartners(db), ctx.server.resolvePath).map((loc) => {
      const u = usage.get(loc.scope);
      return { scope: loc.scope, users: loc.users, bytes: u?.bytes ?? 0, files: u?.files ?? 0, quotaBytes: loc.mount.quotaBytes, quotaFiles: loc.mount.quotaFiles, counted: u !== undefined };
    });
  });

  app.post('/api/v1/quota/rescan', { config: { access: 'manage' }, schema: { tags: ['quota'], summary: 'Count every location anew and store the usage', response: responses({ 200: { type: 'array', items: usageSchema } }) } }, async (request) => {
    const scanned = await scanQuota(ctx.server.store, ctx.server.resolvePath);
    await recordAdminChange(ctx, request, { action: 'rescan', kind: 'quota', name: '*', after: { locations: scanned.length } });
    const users = new Map(allLocations(await loadPartners(ctx.server.store.db), ctx.server.resolvePath).map((l) => [l.scope, l.users]));
    return scanned.map((r) => ({ scope: r.scope, users: users.get(r.scope) ?? [], bytes: r.usage.bytes, files: r.usage.files, quotaBytes: r.limits.bytes, quotaFiles: r.limits.files, counted: true }));
  });
}
