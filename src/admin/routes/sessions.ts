import type { FastifyInstance } from 'fastify';
import { actorOf, recordAdminChange, type AdminContext } from '../context.js';
import { notFound } from '../errors.js';
import { responses, sessionSnapshot } from '../schemas.js';

// Live control sessions: who, from where, with which client and TLS, and the transfer running now. Kicking one
// closes it with a 421 (its address is not banned; add a ban for that).

const idParam = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9a-f]{1,32}$' } } } as const;

export function sessionsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/api/v1/sessions', { config: { access: 'read' }, schema: { tags: ['sessions'], summary: 'Open sessions, oldest first', response: responses({ 200: { type: 'array', items: sessionSnapshot } }) } }, () =>
    ctx.server.sessions.list(),
  );

  app.get('/api/v1/sessions/:id', { config: { access: 'read' }, schema: { tags: ['sessions'], summary: 'One open session', params: idParam, response: responses({ 200: sessionSnapshot }) } }, (request) => {
    const { id } = request.params as { id: string };
    const s = ctx.server.sessions.get(id);
    if (s === null) throw notFound(`session "${id}"`);
    return s;
  });

  app.delete(
    '/api/v1/sessions/:id',
    { config: { access: 'kick' }, schema: { tags: ['sessions'], summary: 'Kick a session: 421 and close (a running transfer is aborted)', params: idParam, response: responses({ 200: sessionSnapshot }) } },
    async (request) => {
      const { id } = request.params as { id: string };
      const s = ctx.server.sessions.kick(id, actorOf(request));
      if (s === null) throw notFound(`session "${id}"`);
      await recordAdminChange(ctx, request, { action: 'kick', kind: 'session', name: id, before: s });
      return s;
    },
  );
}
