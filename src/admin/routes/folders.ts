import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { changeEntity, getEntity, listEntities, type Entry } from '../services/partner-changes.js';
import { folderBody, folderCreateBody, folderOut, nameParam, okSchema, responses } from '../schemas.js';

// Folders: named storage locations with their quota and retention, mounted into users' and groups' trees.

export function foldersRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/api/v1/folders', { config: { access: 'read' }, schema: { tags: ['folders'], summary: 'List folders', response: responses({ 200: { type: 'array', items: folderOut } }) } }, () => listEntities(ctx, 'folder'));

  app.get('/api/v1/folders/:name', { config: { access: 'read' }, schema: { tags: ['folders'], summary: 'One folder', params: nameParam, response: responses({ 200: folderOut }) } }, (request) =>
    getEntity(ctx, 'folder', (request.params as { name: string }).name),
  );

  app.post('/api/v1/folders', { config: { access: 'manage' }, schema: { tags: ['folders'], summary: 'Create a folder', body: folderCreateBody, response: responses({ 201: folderOut }) } }, async (request, reply) => {
    const { name, ...entry } = request.body as Entry & { name: string };
    return reply.code(201).send(await changeEntity(ctx, request, 'folder', name, 'create', entry));
  });

  app.put('/api/v1/folders/:name', { config: { access: 'manage' }, schema: { tags: ['folders'], summary: 'Replace a folder', params: nameParam, body: folderBody, response: responses({ 200: folderOut }) } }, (request) =>
    changeEntity(ctx, request, 'folder', (request.params as { name: string }).name, 'replace', request.body as Entry),
  );

  app.delete('/api/v1/folders/:name', { config: { access: 'manage' }, schema: { tags: ['folders'], summary: 'Delete a folder nobody mounts (its files stay on disk)', params: nameParam, response: responses({ 200: okSchema }) } }, async (request) => {
    await changeEntity(ctx, request, 'folder', (request.params as { name: string }).name, 'delete');
    return { ok: true };
  });
}
