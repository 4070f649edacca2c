import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { invalid } from '../errors.js';
import { searchAudit, verifyAudit } from '../services/audit-search.js';
import { auditRecord, bool, int, responses, str, strList } from '../schemas.js';

// The audit trail (log.auditFile): search by user, time, event and path; verify its hash chain and checkpoints.

const isoTime = { type: 'string', maxLength: 40, description: 'ISO 8601, for example 2027-01-31 or 2027-01-31T12:00:00Z.' } as const;

export function auditRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get(
    '/api/v1/audit/records',
    {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'],
        summary: 'Search the audit trail, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            user: { type: 'string', maxLength: 64, description: 'FTP user or admin account.' },
            event: { type: 'string', maxLength: 500, description: 'Event names, comma-separated (transfer, login, login_failed, store_change, ...).' },
            path: { type: 'string', maxLength: 1024, description: 'Part of a path or of a changed entity name.' },
            from: isoTime,
            to: isoTime,
            limit: { type: 'string', pattern: '^[0-9]{1,6}$', description: 'Most records returned (default 100, at most admin.auditSearchMaxResults).' },
          },
        },
        response: responses({ 200: { type: 'object', properties: { records: { type: 'array', items: auditRecord }, scanned: int, truncated: bool, files: strList } } }),
      },
    },
    (request) => {
      const q = request.query as { user?: string; event?: string; path?: string; from?: string; to?: string; limit?: string };
      const time = (v: string | undefined, name: string, end: boolean) => {
        if (v === undefined || v === '') return undefined;
        const ms = Date.parse(v);
        if (!Number.isFinite(ms)) throw invalid(`querystring.${name}: must be a date such as 2027-01-31 or 2027-01-31T12:00:00Z`);
        // A bare date as "to" covers that whole day.
        return new Date(end && /^\d{4}-\d{2}-\d{2}$/.test(v) ? ms + 86_399_999 : ms).toISOString();
      };
      const max = ctx.server.config.admin.auditSearchMaxResults;
      const limit = Math.min(q.limit === undefined ? 100 : Number(q.limit), max);
      if (limit < 1) throw invalid('querystring.limit: must be at least 1');
      return searchAudit(ctx.server, {
        user: q.user === '' ? undefined : q.user,
        events: q.event === undefined || q.event === '' ? undefined : q.event.split(',').map((e) => e.trim()).filter((e) => e !== ''),
        path: q.path === '' ? undefined : q.path,
        from: time(q.from, 'from', false),
        to: time(q.to, 'to', true),
        limit,
      });
    },
  );

  app.post(
    '/api/v1/audit/verify',
    {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'],
        summary: 'Verify the hash chain and HMAC checkpoints of the audit files (as `ftpsd audit verify`)',
        response: responses({
          200: {
            type: 'object',
            properties: { ok: bool, records: int, checkpoints: int, checkpointsVerified: bool, lastSeq: int, lastHash: str, file: str, line: int, seq: int, problem: str, files: strList },
          },
        }),
      },
    },
    () => verifyAudit(ctx.server),
  );
}
