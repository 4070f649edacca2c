import type { FastifyInstance } from 'fastify';
import { deleteApiKey, insertApiKey, listApiKeys, type ApiKeyRecord } from '../../store/admin-repo.js';
import { newApiKey, sha256 } from '../auth/credentials.js';
import { principalOf, recordAdminChange, type AdminContext } from '../context.js';
import { ApiError, notFound } from '../errors.js';
import { apiKeyOut, okSchema, responses, str } from '../schemas.js';

// API keys for automation: each account manages its own, admins all. A key acts with its account's role.

function keyView(k: ApiKeyRecord): Record<string, unknown> {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return { id: k.id, account: k.account, label: k.label, createdAt: new Date(k.createdAt).toISOString(), expiresAt: iso(k.expiresAt), lastUsedAt: iso(k.lastUsedAt) };
}

export function apiKeysRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const db = () => ctx.server.store.db;

  app.get('/api/v1/api-keys', { config: { access: 'self' }, schema: { tags: ['api-keys'], summary: "API keys: the account's own (all of them for admins)", response: responses({ 200: { type: 'array', items: apiKeyOut } }) } }, async (request) => {
    const p = principalOf(request);
    return (await listApiKeys(db(), p.role === 'admin' ? undefined : p.name)).map(keyView);
  });

  app.post(
    '/api/v1/api-keys',
    {
      config: { access: 'self' },
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key for automation (X-API-Key header); it acts with the role of the account, and is shown only now',
        body: { type: 'object', additionalProperties: false, required: ['label'], properties: { label: { type: 'string', minLength: 1, maxLength: 200 }, expiresInDays: { type: 'integer', minimum: 1, maximum: 3650 } } },
        response: responses({ 201: { type: 'object', properties: { key: str, apiKey: apiKeyOut } } }),
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const body = request.body as { label: string; expiresInDays?: number };
      const { id, key } = newApiKey();
      const now = Date.now();
      await insertApiKey(db(), { id, keyHash: sha256(key), account: p.name, label: body.label, expiresAt: body.expiresInDays === undefined ? null : now + body.expiresInDays * 86_400_000 }, now);
      const record = (await listApiKeys(db(), p.name)).find((k) => k.id === id)!;
      await recordAdminChange(ctx, request, { action: 'create', kind: 'api_key', name: id, after: keyView(record) });
      return reply.code(201).send({ key, apiKey: keyView(record) });
    },
  );

  app.delete(
    '/api/v1/api-keys/:id',
    {
      config: { access: 'self' },
      schema: { tags: ['api-keys'], summary: 'Revoke an API key (own keys; admins any)', params: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } }, response: responses({ 200: okSchema }) },
    },
    async (request) => {
      const p = principalOf(request);
      const { id } = request.params as { id: string };
      const key = (await listApiKeys(db(), p.role === 'admin' ? undefined : p.name)).find((k) => k.id === id);
      if (key === undefined) throw notFound(`API key "${id}"`);
      if (p.role !== 'admin' && key.account !== p.name) throw new ApiError(403, 'forbidden', 'not your API key');
      await deleteApiKey(db(), id);
      await recordAdminChange(ctx, request, { action: 'delete', kind: 'api_key', name: id, before: keyView(key) });
      return { ok: true };
    },
  );
}
