import type { FastifyInstance } from 'fastify';
import { deleteTokensOf, findAccount, updateAccount } from '../../store/admin-repo.js';
import { login, logout } from '../auth/credentials.js';
import { newTotpSecret, otpauthUri, verifyTotp, totpStep } from '../auth/totp.js';
import { principalOf, recordAdminChange, type AdminContext } from '../context.js';
import { ApiError, invalid } from '../errors.js';
import { bool, okSchema, responses, roleSchema, str } from '../schemas.js';

// Login, logout, the account's own password and second factor.

const meSchema = { type: 'object', properties: { name: str, role: roleSchema, via: str, mustChangePassword: bool, totp: bool } } as const;

/** A six-digit code of the authenticator app, as confirming and turning off the second factor take it. */
const totpCodeBody = { type: 'object', additionalProperties: false, required: ['code'], properties: { code: { type: 'string', pattern: '^[0-9]{6}$' } } } as const;

export function authRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.post(
    '/api/v1/auth/login',
    {
      config: { access: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Log in: a token for "Authorization: Bearer", valid while used (admin.tokenIdleTimeoutMs) up to admin.tokenMaxAgeMs',
        security: [],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'password'],
          properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 1024 }, totp: { type: 'string', pattern: '^[0-9]{6}$', description: 'Code of the authenticator app, when the account has one.' } },
        },
        response: responses({ 200: { type: 'object', properties: { token: str, expiresAt: str, account: meSchema } } }),
      },
    },
    async (request) => {
      const body = request.body as { name: string; password: string; totp?: string };
      const outcome = await login(ctx, { ...body, ip: request.ip, via: 'token' });
      if (!outcome.ok) throw outcome.error;
      const p = outcome.principal;
      const account = await findAccount(ctx.server.store.db, p.name);
      return { token: outcome.token, expiresAt: new Date(outcome.expiresAt).toISOString(), account: { name: p.name, role: p.role, via: p.via, mustChangePassword: p.mustChangePassword, totp: account?.totpSecret != null } };
    },
  );

  app.post(
    '/api/v1/auth/logout',
    { config: { access: 'self', beforePasswordChange: true }, schema: { tags: ['auth'], summary: 'End this login token', response: responses({ 200: okSchema }) } },
    async (request) => {
      await logout(ctx, principalOf(request));
      return { ok: true };
    },
  );

  app.get(
    '/api/v1/auth/me',
    { config: { access: 'self', beforePasswordChange: true }, schema: { tags: ['auth'], summary: 'The account making the request', response: responses({ 200: meSchema }) } },
    async (request) => {
      const p = principalOf(request);
      const account = await findAccount(ctx.server.store.db, p.name);
      return { name: p.name, role: p.role, via: p.via, mustChangePassword: p.mustChangePassword, totp: account?.totpSecret != null };
    },
  );

  app.post(
    '/api/v1/auth/password',
    {
      config: { access: 'self', beforePasswordChange: true },
      schema: {
        tags: ['auth'],
        summary: "Change the account's own password (required first after a one-time password); other logins of the account end",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['current', 'password'],
          properties: { current: { type: 'string', minLength: 1, maxLength: 1024 }, password: { type: 'string', minLength: 12, maxLength: 1024 } },
        },
        response: responses({ 200: okSchema }),
      },
    },
    async (request) => {
      const body = request.body as { current: string; password: string };
      await changeOwnPassword(ctx, request, body.current, body.password);
      return { ok: true };
    },
  );

  app.post(
    '/api/v1/auth/totp/setup',
    {
      config: { access: 'self' },
      schema: {
        tags: ['auth'],
        summary: 'Start setting up a second factor: a new TOTP secret (RFC 6238) to enter in an authenticator app; confirm it with a code',
        response: responses({ 200: { type: 'object', properties: { secret: str, uri: str } } }),
      },
    },
    async (request) => {
      const p = principalOf(request);
      const secret = newTotpSecret();
      await updateAccount(ctx.server.store.db, p.name, { totpPending: secret }, Date.now());
      return { secret, uri: otpauthUri(secret, p.name) };
    },
  );

  app.post(
    '/api/v1/auth/totp/confirm',
    {
      config: { access: 'self' },
      schema: {
        tags: ['auth'],
        summary: 'Turn the second factor on with a code of the new secret; from then on logins need a code',
        body: totpCodeBody,
        response: responses({ 200: okSchema }),
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { code } = request.body as { code: string };
      const db = ctx.server.store.db;
      const account = await findAccount(db, p.name);
      if (account?.totpPending == null) throw new ApiError(409, 'conflict', 'no second factor is being set up: call /api/v1/auth/totp/setup first');
      const step = verifyTotp(account.totpPending, code, Date.now());
      if (step === null) throw invalid('the code does not match the new secret (check the device clock)');
      await updateAccount(db, p.name, { totpSecret: account.totpPending, totpPending: null, totpLastStep: step }, Date.now());
      await recordAdminChange(ctx, request, { action: 'totp_enable', kind: 'admin', name: p.name, before: { totp: account.totpSecret !== null }, after: { totp: true } });
      return { ok: true };
    },
  );

  app.delete(
    '/api/v1/auth/totp',
    {
      config: { access: 'self' },
      schema: {
        tags: ['auth'],
        summary: 'Turn the second factor off (needs a current code)',
        body: totpCodeBody,
        response: responses({ 200: okSchema }),
      },
    },
    async (request) => {
      const p = principalOf(request);
      const { code } = request.body as { code: string };
      const db = ctx.server.store.db;
      const account = await findAccount(db, p.name);
      if (account?.totpSecret == null) throw new ApiError(409, 'conflict', 'this account has no second factor');
      if (verifyTotp(account.totpSecret, code, Date.now()) === null) throw invalid('the code does not match');
      await updateAccount(db, p.name, { totpSecret: null, totpPending: null, totpLastStep: totpStep(Date.now()) }, Date.now());
      await recordAdminChange(ctx, request, { action: 'totp_disable', kind: 'admin', name: p.name, before: { totp: true }, after: { totp: false } });
      return { ok: true };
    },
  );
}

/** Sets the account's own password after checking the current one. Every other login of the account ends. */
export async function changeOwnPassword(ctx: AdminContext, request: import('fastify').FastifyRequest, current: string, password: string): Promise<void> {
  const p = principalOf(request);
  const db = ctx.server.store.db;
  const account = await findAccount(db, p.name);
  if (account === null || !(await ctx.hasher.verify(account.passwordHash, current))) {
    ctx.server.defender?.record(request.ip, 'adminLoginFailure', { user: p.name, during: 'password_change' });
    throw new ApiError(403, 'invalid_credentials', 'the current password is wrong');
  }
  if (password === current) throw invalid('the new password must differ from the current one');
  if (password.length < 12) throw invalid('the new password must have at least 12 characters');
  const hash = await ctx.hasher.hash(password);
  const now = Date.now();
  await updateAccount(db, p.name, { passwordHash: hash, mustChangePassword: false }, now);
  await deleteTokensOf(db, p.name, p.tokenHash ?? undefined);
  await recordAdminChange(ctx, request, { action: 'passwd', kind: 'admin', name: p.name, before: { mustChangePassword: account.mustChangePassword }, after: { mustChangePassword: false } });
}
