import type { FastifyInstance, FastifyRequest } from 'fastify';
import { runRetention } from '../../partners/housekeeping.js';
import { actorOf, recordAdminChange, type AdminContext } from '../context.js';
import { bool, int, number, responses, str } from '../schemas.js';

// Folder retention and expired partial uploads, now: a dry run lists what would go, a run deletes it (each deletion
// is a change-log record, as with the scheduled runs).

const reportSchema = {
  type: 'object',
  properties: {
    dryRun: bool,
    deleted: { type: 'array', items: { type: 'object', properties: { scope: str, path: str, size: int, since: str, ageDays: number } } },
    partialsRemoved: { type: 'array', items: str },
  },
} as const;

export function retentionRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const run = async (dryRun: boolean, request: FastifyRequest) => ({
    dryRun,
    ...(await runRetention(ctx.server.store, { resolve: ctx.server.resolvePath, partialMaxAgeMs: ctx.server.config.housekeeping.partialUploadMaxAgeMs, dryRun, actor: actorOf(request), ip: request.ip })),
  });

  app.post('/api/v1/retention/dry-run', { config: { access: 'read' }, schema: { tags: ['retention'], summary: 'What a retention run would delete now (nothing is deleted)', response: responses({ 200: reportSchema }) } }, (request) =>
    run(true, request),
  );

  app.post('/api/v1/retention/run', { config: { access: 'manage' }, schema: { tags: ['retention'], summary: 'Delete what retention says is due, now', response: responses({ 200: reportSchema }) } }, async (request) => {
    const report = await run(false, request);
    await recordAdminChange(ctx, request, { action: 'run', kind: 'retention', name: '*', after: { deleted: report.deleted.length, partialsRemoved: report.partialsRemoved.length } });
    return report;
  });
}
