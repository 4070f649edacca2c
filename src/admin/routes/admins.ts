import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { NAME } from '../../partners/partner-file.js';
import { deleteAccount, deleteTokensOf, findAccount, insertAccount, listAccounts, updateAccount, type AdminAccount } from '../../store/admin-repo.js';
import type { AdminRole } from '../../store/schema.js';
import { principalOf, recordAdminChange, type AdminContext } from '../context.js';
import { conflict, invalid, notFound } from '../errors.js';
import { accountOut, bool, nameParam, okSchema, responses, roleSchema, str } from '../schemas.js';

// Admin accounts and their roles: admins only.

export function accountView(a: AdminAccount): Record<string, unknown> {
  return { name: a.name, role: a.role, disabled: a.disabled, totp: a.totpSecret !== null, mustChangePassword: a.mustChangePassword, lastLoginAt: a.lastLoginAt === null ? null : new Date(a.lastLoginAt).toISOString(), createdAt: new Date(a.createdAt).toISOString() };
}

/** Refuses a change that would leave no enabled account with the admin role: nobody could manage the server then. */
async function keepOneAdmin(ctx: AdminContext, name: string, next: { role: AdminRole; disabled: boolean } | null): Promise<void> {
  if (next !== null && next.role === 'admin' && !next.disabled) return;
  const others = (await listAccounts(ctx.server.store.db)).filter((a) => a.name !== name && a.role === 'admin' && !a.disabled);
  if (others.length === 0) throw conflict(`"${name}" is the last enabled admin account; create another admin first`);
}

export function adminsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const db = () => ctx.server.store.db;

  app.get('/api/v1/admins', { config: { access: 'manage' }, schema: { tags: ['admins'], summary: 'List admin accounts', response: responses({ 200: { type: 'array', items: accountOut } }) } }, async () =>
    (await listAccounts(db())).map(accountView),
  );

  app.get('/api/v1/admins/:name', { config: { access: 'manage' }, schema: { tags: ['admins'], summary: 'One admin account', params: nameParam, response: responses({ 200: accountOut }) } }, async (request) => {
    const { name } = request.params as { name: string };
    const a = await findAccount(db(), name);
    if (a === null) throw notFound(`admin account "${name}"`);
    return accountView(a);
  });

  app.post(
    '/api/v1/admins',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['admins'],
        summary: 'Create an admin account; it gets a one-time password to change at its first login',
        body: { type: 'object', additionalProperties: false, required: ['name', 'role'], properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, role: roleSchema } },
        response: responses({ 201: { type: 'object', properties: { account: accountOut, password: str } } }),
      },
    },
    async (request, reply) => {
      const { name, role } = request.body as { name: string; role: AdminRole };
      if (!NAME.test(name)) throw invalid(`account name "${name}": use letters, digits and . _ @ - (at most 64)`);
      if ((await findAccount(db(), name)) !== null) throw conflict(`admin account "${name}" already exists`);
      const password = randomBytes(12).toString('base64url');
      await insertAccount(db(), { name, role, passwordHash: await ctx.hasher.hash(password), mustChangePassword: true }, Date.now());
      const account = (await findAccount(db(), name))!;
      await recordAdminChange(ctx, request, { action: 'create', kind: 'admin', name, after: accountView(account) });
      return reply.code(201).send({ account: accountView(account), password });
    },
  );

  app.put(
    '/api/v1/admins/:name',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['admins'],
        summary: "Change an account's role or disable it (its logins end)",
        params: nameParam,
        body: { type: 'object', additionalProperties: false, required: ['role', 'disabled'], properties: { role: roleSchema, disabled: bool } },
        response: responses({ 200: accountOut }),
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const body = request.body as { role: AdminRole; disabled: boolean };
      const before = await findAccount(db(), name);
      if (before === null) throw notFound(`admin account "${name}"`);
      await keepOneAdmin(ctx, name, body);
      await updateAccount(db(), name, { role: body.role, disabled: body.disabled }, Date.now());
      if (body.disabled) await deleteTokensOf(db(), name);
      const after = (await findAccount(db(), name))!;
      await recordAdminChange(ctx, request, { action: 'update', kind: 'admin', name, before: accountView(before), after: accountView(after) });
      return accountView(after);
    },
  );

  app.post(
    '/api/v1/admins/:name/password-reset',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['admins'],
        summary: 'Give an account a new one-time password (its logins end; it must change it at its next login)',
        params: nameParam,
        response: responses({ 200: { type: 'object', properties: { password: str } } }),
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      if ((await findAccount(db(), name)) === null) throw notFound(`admin account "${name}"`);
      const password = randomBytes(12).toString('base64url');
      await updateAccount(db(), name, { passwordHash: await ctx.hasher.hash(password), mustChangePassword: true }, Date.now());
      await deleteTokensOf(db(), name);
      await recordAdminChange(ctx, request, { action: 'password_reset', kind: 'admin', name, after: { mustChangePassword: true } });
      return { password };
    },
  );

  app.delete('/api/v1/admins/:name', { config: { access: 'manage' }, schema: { tags: ['admins'], summary: 'Delete an admin account, its logins and API keys', params: nameParam, response: responses({ 200: okSchema }) } }, async (request) => {
    const { name } = request.params as { name: string };
    const before = await findAccount(db(), name);
    if (before === null) throw notFound(`admin account "${name}"`);
    if (name === principalOf(request).name) throw conflict('an account cannot delete itself');
    await keepOneAdmin(ctx, name, null);
    await deleteAccount(db(), name);
    await recordAdminChange(ctx, request, { action: 'delete', kind: 'admin', name, before: accountView(before) });
    return { ok: true };
  });
}
