import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { changeEntity, getEntity, listEntities, type Entry } from '../services/partner-changes.js';
import { groupBody, groupOut, nameParam, okSchema, responses } from '../schemas.js';

// Groups: templates of mounts, permissions and policy that users inherit, first group first.

const createBody = { ...groupBody, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, ...groupBody.properties } } as const;

export function groupsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/api/v1/groups', { config: { access: 'read' }, schema: { tags: ['groups'], summary: 'List groups', response: responses({ 200: { type: 'array', items: groupOut } }) } }, () => listEntities(ctx, 'group'));

  app.get('/api/v1/groups/:name', { config: { access: 'read' }, schema: { tags: ['groups'], summary: 'One group', params: nameParam, response: responses({ 200: groupOut }) } }, (request) =>
    getEntity(ctx, 'group', (request.params as { name: string }).name),
  );

  app.post('/api/v1/groups', { config: { access: 'manage' }, schema: { tags: ['groups'], summary: 'Create a group', body: createBody, response: responses({ 201: groupOut }) } }, async (request, reply) => {
    const { name, ...entry } = request.body as Entry & { name: string };
    return reply.code(201).send(await changeEntity(ctx, request, 'group', name, 'create', entry));
  });

  app.put('/api/v1/groups/:name', { config: { access: 'manage' }, schema: { tags: ['groups'], summary: 'Replace a group', params: nameParam, body: groupBody, response: responses({ 200: groupOut }) } }, (request) =>
    changeEntity(ctx, request, 'group', (request.params as { name: string }).name, 'replace', request.body as Entry),
  );

  app.delete('/api/v1/groups/:name', { config: { access: 'manage' }, schema: { tags: ['groups'], summary: 'Delete a group that has no members', params: nameParam, response: responses({ 200: okSchema }) } }, async (request) => {
    await changeEntity(ctx, request, 'group', (request.params as { name: string }).name, 'delete');
    return { ok: true };
  });
}
