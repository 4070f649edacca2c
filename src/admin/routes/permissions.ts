import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { changePart, getEntity } from '../services/partner-changes.js';
import { nameParam, permissionsSchema, responses } from '../schemas.js';

// Per-path permissions of a user or group, read and replaced on their own.

export function permissionsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  for (const kind of ['user', 'group'] as const) {
    const base = `/api/v1/${kind}s/:name/permissions`;
    app.get(base, { config: { access: 'read' }, schema: { tags: ['permissions'], summary: `A ${kind}'s own permissions per virtual path`, params: nameParam, response: responses({ 200: permissionsSchema }) } }, async (request) => {
      const entry = await getEntity(ctx, kind, (request.params as { name: string }).name);
      return entry.permissions ?? {};
    });
    app.put(
      base,
      { config: { access: 'manage' }, schema: { tags: ['permissions'], summary: `Replace a ${kind}'s permissions (applies to its next command)`, params: nameParam, body: permissionsSchema, response: responses({ 200: permissionsSchema }) } },
      async (request) => (await changePart(ctx, request, kind, (request.params as { name: string }).name, 'permissions', request.body)).permissions ?? {},
    );
  }
}
