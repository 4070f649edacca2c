import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { findAccount, findApiKey, findToken, extendToken, insertToken, touchApiKey, updateAccount, claimTotpStep, deleteToken, purgeExpiredTokens } from '../../store/admin-repo.js';
import { ApiError } from '../errors.js';
import type { AdminContext, Principal } from '../context.js';
import { verifyTotp } from './totp.js';

// Logins, tokens, API keys and the web admin's cookie. A login token is 32 random bytes ("fat_..."), an API key an id
// and 32 random bytes ("fak_ID_..."); the store keeps their SHA-256 only. A token expires after
// admin.tokenIdleTimeoutMs unused and admin.tokenMaxAgeMs after the login. The web admin carries the token in an
// HttpOnly cookie; its forms and scripts prove they come from our pages with a CSRF token derived from it.

export const COOKIE = 'ftpsd_admin';
const TOKEN_PREFIX = 'fat_';
const KEY_PREFIX = 'fak_';
/** Extending a token's expiry costs a write; do it at most this often per token. */
const EXTEND_AFTER_MS = 60_000;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function newToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function newApiKey(): { id: string; key: string } {
  const id = randomBytes(6).toString('hex');
  return { id, key: `${KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}` };
}

/** The CSRF token of a cookie login: only our pages, which are given it, can send it back. */
export function csrfFor(token: string): string {
  return createHmac('sha256', token).update('ftpsd-admin-csrf').digest('base64url');
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export type LoginOutcome =
  | { ok: true; token: string; expiresAt: number; principal: Principal }
  | { ok: false; error: ApiError };

/**
 * Checks a name, password and (when the account has one) TOTP code. A failure is delayed by admin.failedLoginDelayMs,
 * scored in the defender (adminLoginFailure) and audited; the reply never says which part was wrong, except that a
 * code is missing once the password was right.
 */
export async function login(ctx: AdminContext, input: { name: string; password: string; totp?: string | undefined; ip: string; via: 'token' | 'cookie' }): Promise<LoginOutcome> {
  const { server } = ctx;
  const db = server.store.db;
  const now = Date.now();
  const account = await findAccount(db, input.name);
  const passwordOk = await ctx.hasher.verify(account?.passwordHash ?? null, input.password);
  const fail = async (reason: string, error = new ApiError(401, 'invalid_credentials', 'wrong name, password or code')): Promise<LoginOutcome> => {
    server.defender?.record(input.ip, 'adminLoginFailure', { user: input.name });
    server.audit('admin_login_failed', { admin: input.name, ip: input.ip, reason });
    await new Promise((r) => setTimeout(r, server.config.admin.failedLoginDelayMs));
    return { ok: false, error };
  };
  if (account === null) return fail('unknown_account');
  if (!passwordOk) return fail('bad_password');
  if (account.disabled) return fail('disabled');
  if (account.totpSecret !== null) {
    if (input.totp === undefined || input.totp === '') {
      return { ok: false, error: new ApiError(401, 'totp_required', 'this account needs the code from its authenticator app (totp)') };
    }
    const step = verifyTotp(account.totpSecret, input.totp, now);
    if (step === null) return fail('bad_totp');
    if (!(await claimTotpStep(db, account.name, step))) return fail('totp_reused');
  }
  const token = newToken();
  const expiresAt = now + server.config.admin.tokenIdleTimeoutMs;
  await purgeExpiredTokens(db, now);
  await insertToken(db, { tokenHash: sha256(token), account: account.name, ip: input.ip, expiresAt }, now);
  await updateAccount(db, account.name, { lastLoginAt: now }, now);
  server.audit('admin_login', { admin: account.name, ip: input.ip, via: input.via, role: account.role });
  return {
    ok: true,
    token,
    expiresAt,
    principal: { name: account.name, role: account.role, via: input.via, mustChangePassword: account.mustChangePassword, tokenHash: sha256(token), csrf: input.via === 'cookie' ? csrfFor(token) : null },
  };
}

export async function logout(ctx: AdminContext, principal: Principal): Promise<void> {
  if (principal.tokenHash !== null) await deleteToken(ctx.server.store.db, principal.tokenHash);
}

/**
 * Who sent the request: "Authorization: Bearer fat_..." (a login token), "Authorization: Bearer fak_..." or
 * "X-API-Key: fak_..." (an API key), or the web admin's cookie. Null when it carries none that is valid now.
 */
export async function authenticate(ctx: AdminContext, request: FastifyRequest): Promise<Principal | null> {
  const db = ctx.server.store.db;
  const now = Date.now();
  const auth = request.headers.authorization;
  const bearer = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : null;
  const headerKey = typeof request.headers['x-api-key'] === 'string' ? request.headers['x-api-key'] : null;
  const apiKey = headerKey ?? (bearer?.startsWith(KEY_PREFIX) ? bearer : null);
  if (apiKey !== null) {
    const key = await findApiKey(db, sha256(apiKey), now);
    if (key === null) return null;
    const account = await findAccount(db, key.account);
    if (account === null || account.disabled) return null;
    if (key.lastUsedAt === null || now - key.lastUsedAt > EXTEND_AFTER_MS) await touchApiKey(db, key.id, now);
    return { name: account.name, role: account.role, via: 'api_key', mustChangePassword: false, tokenHash: null, csrf: null };
  }
  const cookie = request.cookies[COOKIE];
  const token = bearer ?? cookie ?? null;
  if (token === null || !token.startsWith(TOKEN_PREFIX)) return null;
  const tokenHash = sha256(token);
  const found = await findToken(db, tokenHash, now);
  if (found === null) return null;
  const cfg = ctx.server.config.admin;
  if (now - found.createdAt >= cfg.tokenMaxAgeMs) {
    await deleteToken(db, tokenHash);
    return null;
  }
  const account = await findAccount(db, found.account);
  if (account === null || account.disabled) return null;
  const next = Math.min(now + cfg.tokenIdleTimeoutMs, found.createdAt + cfg.tokenMaxAgeMs);
  if (next - found.expiresAt > EXTEND_AFTER_MS) await extendToken(db, tokenHash, next);
  const via = bearer !== null ? 'token' : 'cookie';
  return { name: account.name, role: account.role, via, mustChangePassword: account.mustChangePassword, tokenHash, csrf: via === 'cookie' ? csrfFor(token) : null };
}
