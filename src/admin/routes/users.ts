import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { changeEntity, getEntity, listEntities, setPassword, type Entry } from '../services/partner-changes.js';
import { nameParam, okSchema, passwordBody, responses, userBody, userCreateBody, userOut } from '../schemas.js';

// FTP users: the partner model's users, with their groups, mounts, permissions and policy.

export function usersRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/api/v1/users', { config: { access: 'read' }, schema: { tags: ['users'], summary: 'List users', response: responses({ 200: { type: 'array', items: userOut } }) } }, () => listEntities(ctx, 'user'));

  app.get('/api/v1/users/:name', { config: { access: 'read' }, schema: { tags: ['users'], summary: 'One user', params: nameParam, response: responses({ 200: userOut }) } }, (request) =>
    getEntity(ctx, 'user', (request.params as { name: string }).name),
  );

  app.post(
    '/api/v1/users',
    { config: { access: 'manage' }, schema: { tags: ['users'], summary: 'Create a user (it can log in at once)', body: userCreateBody, response: responses({ 201: userOut }) } },
    async (request, reply) => {
      const { name, ...entry } = request.body as Entry & { name: string };
      return reply.code(201).send(await changeEntity(ctx, request, 'user', name, 'create', entry));
    },
  );

  app.put(
    '/api/v1/users/:name',
    { config: { access: 'manage' }, schema: { tags: ['users'], summary: 'Replace a user (a missing password keeps the current one); open sessions of a disabled user close', params: nameParam, body: userBody, response: responses({ 200: userOut }) } },
    (request) => changeEntity(ctx, request, 'user', (request.params as { name: string }).name, 'replace', request.body as Entry),
  );

  app.put(
    '/api/v1/users/:name/password',
    { config: { access: 'manage' }, schema: { tags: ['users'], summary: "Set a user's password", params: nameParam, body: passwordBody, response: responses({ 200: okSchema }) } },
    async (request) => {
      await setPassword(ctx, request, (request.params as { name: string }).name, (request.body as { password: string }).password);
      return { ok: true };
    },
  );

  app.delete('/api/v1/users/:name', { config: { access: 'manage' }, schema: { tags: ['users'], summary: 'Delete a user (its open sessions close)', params: nameParam, response: responses({ 200: okSchema }) } }, async (request) => {
    await changeEntity(ctx, request, 'user', (request.params as { name: string }).name, 'delete');
    return { ok: true };
  });
}
