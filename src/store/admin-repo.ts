import type { Kysely, Selectable } from 'kysely';
import type { AdminAccountsTable, AdminRole, Database } from './schema.js';

// Admin accounts, their login tokens and API keys. Tokens and keys are stored as SHA-256 digests only: whoever reads
// the store cannot log in with them. Callers hash; this module never sees a token in the clear.

type Db = Kysely<Database>;

export interface AdminAccount {
  name: string;
  role: AdminRole;
  passwordHash: string;
  mustChangePassword: boolean;
  totpSecret: string | null;
  totpPending: string | null;
  totpLastStep: number | null;
  disabled: boolean;
  lastLoginAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface ApiKeyRecord {
  id: string;
  account: string;
  label: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
}

function accountFromRow(r: Selectable<AdminAccountsTable>): AdminAccount {
  return {
    name: r.name,
    role: r.role,
    passwordHash: r.password_hash,
    mustChangePassword: r.must_change_password !== 0,
    totpSecret: r.totp_secret,
    totpPending: r.totp_pending,
    totpLastStep: r.totp_last_step,
    disabled: r.disabled !== 0,
    lastLoginAt: r.last_login_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function listAccounts(db: Db): Promise<AdminAccount[]> {
  return (await db.selectFrom('admin_accounts').selectAll().orderBy('name').execute()).map(accountFromRow);
}

export async function findAccount(db: Db, name: string): Promise<AdminAccount | null> {
  const row = await db.selectFrom('admin_accounts').selectAll().where('name', '=', name).executeTakeFirst();
  return row === undefined ? null : accountFromRow(row);
}

export async function countAccounts(db: Db): Promise<number> {
  const row = await db.selectFrom('admin_accounts').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function insertAccount(db: Db, a: { name: string; role: AdminRole; passwordHash: string; mustChangePassword: boolean }, now: number): Promise<void> {
  await db
    .insertInto('admin_accounts')
    .values({ name: a.name, role: a.role, password_hash: a.passwordHash, must_change_password: a.mustChangePassword ? 1 : 0, totp_secret: null, totp_pending: null, totp_last_step: null, disabled: 0, last_login_at: null, created_at: now, updated_at: now })
    .execute();
}

export interface AccountUpdate {
  role?: AdminRole;
  disabled?: boolean;
  passwordHash?: string;
  mustChangePassword?: boolean;
  totpSecret?: string | null;
  totpPending?: string | null;
  totpLastStep?: number | null;
  lastLoginAt?: number;
}

export async function updateAccount(db: Db, name: string, u: AccountUpdate, now: number): Promise<boolean> {
  const set: Partial<Record<keyof AdminAccountsTable, unknown>> = { updated_at: now };
  if (u.role !== undefined) set.role = u.role;
  if (u.disabled !== undefined) set.disabled = u.disabled ? 1 : 0;
  if (u.passwordHash !== undefined) set.password_hash = u.passwordHash;
  if (u.mustChangePassword !== undefined) set.must_change_password = u.mustChangePassword ? 1 : 0;
  if (u.totpSecret !== undefined) set.totp_secret = u.totpSecret;
  if (u.totpPending !== undefined) set.totp_pending = u.totpPending;
  if (u.totpLastStep !== undefined) set.totp_last_step = u.totpLastStep;
  if (u.lastLoginAt !== undefined) set.last_login_at = u.lastLoginAt;
  const r = await db.updateTable('admin_accounts').set(set as never).where('name', '=', name).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Accepts a TOTP time step only if it is later than the last one accepted, in one statement, so two requests with
 * the same code (on any node) cannot both pass.
 */
export async function claimTotpStep(db: Db, name: string, step: number): Promise<boolean> {
  const r = await db
    .updateTable('admin_accounts')
    .set({ totp_last_step: step })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function deleteAccount(db: Db, name: string): Promise<boolean> {
  await db.deleteFrom('admin_tokens').where('account', '=', name).execute();
  await db.deleteFrom('admin_api_keys').where('account', '=', name).execute();
  const r = await db.deleteFrom('admin_accounts').where('name', '=', name).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function insertToken(db: Db, t: { tokenHash: string; account: string; ip: string; expiresAt: number }, now: number): Promise<void> {
  await db.insertInto('admin_tokens').values({ token_hash: t.tokenHash, account: t.account, ip: t.ip, created_at: now, expires_at: t.expiresAt }).execute();
}

export async function findToken(db: Db, tokenHash: string, now: number): Promise<{ account: string; createdAt: number; expiresAt: number } | null> {
  const row = await db.selectFrom('admin_tokens').select(['account', 'created_at', 'expires_at']).where('token_hash', '=', tokenHash).where('expires_at', '>', now).executeTakeFirst();
  return row === undefined ? null : { account: row.account, createdAt: row.created_at, expiresAt: row.expires_at };
}

export async function extendToken(db: Db, tokenHash: string, expiresAt: number): Promise<void> {
  await db.updateTable('admin_tokens').set({ expires_at: expiresAt }).where('token_hash', '=', tokenHash).execute();
}

export async function deleteToken(db: Db, tokenHash: string): Promise<void> {
  await db.deleteFrom('admin_tokens').where('token_hash', '=', tokenHash).execute();
}

/** Ends every login of an account (password changed, disabled), but the one whose hash is `except`. */
export async function deleteTokensOf(db: Db, account: string, except?: string): Promise<void> {
  let q = db.deleteFrom('admin_tokens').where('account', '=', account);
  if (except !== undefined) q = q.where('token_hash', '!=', except);
  await q.execute();
}

export async function purgeExpiredTokens(db: Db, now: number): Promise<void> {
  await db.deleteFrom('admin_tokens').where('expires_at', '<=', now).execute();
}

export async function insertApiKey(db: Db, k: { id: string; keyHash: string; account: string; label: string; expiresAt: number | null }, now: number): Promise<void> {
  await db.insertInto('admin_api_keys').values({ id: k.id, key_hash: k.keyHash, account: k.account, label: k.label, created_at: now, expires_at: k.expiresAt, last_used_at: null }).execute();
}

export async function findApiKey(db: Db, keyHash: string, now: number): Promise<ApiKeyRecord | null> {
  const row = await db.selectFrom('admin_api_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
  if (row === undefined || (row.expires_at !== null && row.expires_at <= now)) return null;
  return { id: row.id, account: row.account, label: row.label, createdAt: row.created_at, expiresAt: row.expires_at, lastUsedAt: row.last_used_at };
}

export async function touchApiKey(db: Db, id: string, now: number): Promise<void> {
  await db.updateTable('admin_api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
}

export async function listApiKeys(db: Db, account?: string): Promise<ApiKeyRecord[]> {
  let q = db.selectFrom('admin_api_keys').selectAll().orderBy('created_at');
  if (account !== undefined) q = q.where('account', '=', account);
  return (await q.execute()).map((row) => ({ id: row.id, account: row.account, label: row.label, createdAt: row.created_at, expiresAt: row.expires_at, lastUsedAt: row.last_used_at }));
}

export async function deleteApiKey(db: Db, id: string): Promise<ApiKeyRecord | null> {
  const row = await db.selectFrom('admin_api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  if (row === undefined) return null;
  await db.deleteFrom('admin_api_keys').where('id', '=', id).execute();
  return { id: row.id, account: row.account, label: row.label, createdAt: row.created_at, expiresAt: row.expires_at, lastUsedAt: row.last_used_at };
}
