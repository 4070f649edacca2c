import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { changePart, getEntity } from '../services/partner-changes.js';
import { nameParam, policySchema, responses } from '../schemas.js';

// A user's or group's own policy values (networks, TLS, rates, sessions, quota, data-session reuse, lifecycle).

export function policiesRoutes(app: FastifyInstance, ctx: AdminContext): void {
  for (const kind of ['user', 'group'] as const) {
    const base = `/api/v1/${kind}s/:name/policy`;
    app.get(base, { config: { access: 'read' }, schema: { tags: ['policies'], summary: `A ${kind}'s own policy (values not set are inherited)`, params: nameParam, response: responses({ 200: policySchema }) } }, async (request) => {
      const entry = await getEntity(ctx, kind, (request.params as { name: string }).name);
      return entry.policy ?? {};
    });
    app.put(
      base,
      { config: { access: 'manage' }, schema: { tags: ['policies'], summary: `Replace a ${kind}'s policy`, params: nameParam, body: policySchema, response: responses({ 200: policySchema }) } },
      async (request) => (await changePart(ctx, request, kind, (request.params as { name: string }).name, 'policy', request.body)).policy ?? {},
    );
  }
}
