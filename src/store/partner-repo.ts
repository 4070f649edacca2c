import type { Kysely, Selectable } from 'kysely';
import { permissionNames, type Permission } from '../config/schema.js';
import type { FolderSpec, GroupSpec, OwnerSpec, PartnerSet, PolicySpec, TlsVersion, UserRuntime, UserSpec } from './partner-model.js';
import { emptyPartnerSet } from './partner-model.js';
import type { Database, FoldersTable, OwnerKind, PoliciesTable } from './schema.js';

// The users + groups + folders aggregate: read as PartnerSet records, written one user, group or folder at a time
// (its row and its mounts, permissions and policy replaced together). Callers run writes inside a transaction.

type Db = Kysely<Database>;

/** The whole partner model, or with `user` only that user, its groups and the folders they mount. */
export async function loadPartners(db: Db, only?: { user: string }): Promise<PartnerSet> {
  const set = emptyPartnerSet();
  const userRows = only === undefined ? await db.selectFrom('users').selectAll().orderBy('name').execute() : await db.selectFrom('users').selectAll().where('name', '=', only.user).execute();
  if (only !== undefined && userRows.length === 0) return set;
  const memberships = await (only === undefined
    ? db.selectFrom('user_groups').selectAll()
    : db.selectFrom('user_groups').selectAll().where('user_name', '=', only.user)
  ).orderBy('user_name').orderBy('position').execute();
  const groupNames = [...new Set(memberships.map((m) => m.group_name))];
  const groupRows = only === undefined
    ? await db.selectFrom('groups').selectAll().orderBy('name').execute()
    : groupNames.length === 0 ? [] : await db.selectFrom('groups').selectAll().where('name', 'in', groupNames).execute();

  const key = (kind: OwnerKind, name: string) => `${kind}\0${name}`;
  const wanted = new Set([...userRows.map((u) => key('user', u.name)), ...groupRows.map((g) => key('group', g.name))]);
  const names = [...userRows.map((u) => u.name), ...groupRows.map((g) => g.name)];
  // With `only`, rows of the few owners concerned: by name in SQL, by kind here.
  const mine = async <T extends { owner_kind: OwnerKind; owner_name: string }>(rows: Promise<T[]>) => (await rows).filter((r) => only === undefined || wanted.has(key(r.owner_kind, r.owner_name)));
  const [mounts, permissions, policies] = await Promise.all([
    mine((only === undefined ? db.selectFrom('mounts').selectAll() : db.selectFrom('mounts').selectAll().where('owner_name', 'in', names)).orderBy('virtual_path').execute()),
    mine((only === undefined ? db.selectFrom('permissions').selectAll() : db.selectFrom('permissions').selectAll().where('owner_name', 'in', names)).orderBy('virtual_path').execute()),
    mine((only === undefined ? db.selectFrom('policies').selectAll() : db.selectFrom('policies').selectAll().where('owner_name', 'in', names)).execute()),
  ]);
  const folderNames = [...new Set(mounts.map((m) => m.folder_name))];
  const folderRows = only === undefined
    ? await db.selectFrom('folders').selectAll().orderBy('name').execute()
    : folderNames.length === 0 ? [] : await db.selectFrom('folders').selectAll().where('name', 'in', folderNames).execute();

  const parts = new Map<string, Pick<OwnerSpec, 'mounts' | 'permissions' | 'policy'>>();
  const partsOf = (kind: OwnerKind, name: string) => {
    let p = parts.get(key(kind, name));
    if (p === undefined) parts.set(key(kind, name), (p = { mounts: {}, permissions: {}, policy: {} }));
    return p;
  };
  for (const m of mounts) partsOf(m.owner_kind, m.owner_name).mounts[m.virtual_path] = m.folder_name;
  for (const p of permissions) partsOf(p.owner_kind, p.owner_name).permissions[p.virtual_path] = parsePerms(p.perms);
  for (const p of policies) partsOf(p.owner_kind, p.owner_name).policy = policyFromRow(p);

  for (const g of groupRows) set.groups[g.name] = { name: g.name, description: g.description, home: g.home, ...partsOf('group', g.name) };
  for (const u of userRows) {
    set.users[u.name] = {
      name: u.name,
      description: u.description,
      home: u.home,
      passwordHash: u.password_hash,
      groups: memberships.filter((m) => m.user_name === u.name).map((m) => m.group_name),
      disabled: u.disabled !== 0,
      expiresAt: u.expires_at,
      ...partsOf('user', u.name),
    };
  }
  for (const f of folderRows) set.folders[f.name] = folderFromRow(f);
  return set;
}

export async function loadUserRuntime(db: Db, name: string): Promise<UserRuntime | null> {
  const row = await db.selectFrom('users').select(['last_login_at', 'password_changed_at', 'created_at']).where('name', '=', name).executeTakeFirst();
  return row === undefined ? null : { lastLoginAt: row.last_login_at, passwordChangedAt: row.password_changed_at, createdAt: row.created_at };
}

export async function userNames(db: Db): Promise<string[]> {
  return (await db.selectFrom('users').select('name').orderBy('name').execute()).map((r) => r.name);
}

/** Creates or replaces a user with its memberships, mounts, permissions and policy. Login history is kept. */
export async function putUser(db: Db, u: UserSpec, now: number): Promise<void> {
  const existing = await db.selectFrom('users').select(['password_hash']).where('name', '=', u.name).executeTakeFirst();
  const passwordChanged = existing === undefined ? u.passwordHash !== null : existing.password_hash !== u.passwordHash;
  const row = { password_hash: u.passwordHash, home: u.home, disabled: u.disabled ? 1 : 0, expires_at: u.expiresAt, description: u.description, updated_at: now };
  if (existing === undefined) {
    await db.insertInto('users').values({ name: u.name, ...row, last_login_at: null, password_changed_at: u.passwordHash === null ? null : now, created_at: now }).execute();
  } else {
    await db.updateTable('users').set({ ...row, ...(passwordChanged ? { password_changed_at: now } : {}) }).where('name', '=', u.name).execute();
  }
  await db.deleteFrom('user_groups').where('user_name', '=', u.name).execute();
  if (u.groups.length > 0) await db.insertInto('user_groups').values(u.groups.map((g, position) => ({ user_name: u.name, group_name: g, position }))).execute();
  await putOwnerParts(db, 'user', u);
}

export async function putGroup(db: Db, g: GroupSpec, now: number): Promise<void> {
  const row = { home: g.home, description: g.description, updated_at: now };
  await db.insertInto('groups').values({ name: g.name, ...row, created_at: now }).onConflict((oc) => oc.column('name').doUpdateSet(row)).execute();
  await putOwnerParts(db, 'group', g);
}

export async function putFolder(db: Db, f: FolderSpec, now: number): Promise<void> {
  const row = {
    path: f.path,
    description: f.description,
    quota_bytes: f.quotaBytes,
    quota_files: f.quotaFiles,
    retention_max_age_days: f.retentionMaxAgeDays,
    retention_after_download: f.retentionAfterDownload ? 1 : 0,
    updated_at: now,
  };
  await db.insertInto('folders').values({ name: f.name, ...row, created_at: now }).onConflict((oc) => oc.column('name').doUpdateSet(row)).execute();
}

export async function deleteUser(db: Db, name: string): Promise<void> {
  await deleteOwnerParts(db, 'user', name);
  await db.deleteFrom('user_groups').where('user_name', '=', name).execute();
  await db.deleteFrom('users').where('name', '=', name).execute();
}

export async function deleteGroup(db: Db, name: string): Promise<void> {
  await deleteOwnerParts(db, 'group', name);
  await db.deleteFrom('groups').where('name', '=', name).execute();
}

export async function deleteFolder(db: Db, name: string): Promise<void> {
  await db.deleteFrom('folders').where('name', '=', name).execute();
}

/** A stronger hash of the same password (argon2 parameters raised): the password's age is kept. */
export async function rehashPassword(db: Db, name: string, hash: string): Promise<void> {
  await db.updateTable('users').set({ password_hash: hash }).where('name', '=', name).execute();
}

/** Login bookkeeping, outside the partner model: no change-log record. */
export async function recordLogin(db: Db, name: string, at: number): Promise<void> {
  await db.updateTable('users').set({ last_login_at: at }).where('name', '=', name).execute();
}

export async function setPasswordHash(db: Db, name: string, hash: string, at: number): Promise<boolean> {
  const r = await db.updateTable('users').set({ password_hash: hash, password_changed_at: at, updated_at: at }).where('name', '=', name).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

async function putOwnerParts(db: Db, kind: OwnerKind, o: OwnerSpec): Promise<void> {
  await deleteOwnerParts(db, kind, o.name);
  const owner = { owner_kind: kind, owner_name: o.name };
  const mounts = Object.entries(o.mounts);
  if (mounts.length > 0) await db.insertInto('mounts').values(mounts.map(([virtual_path, folder_name]) => ({ ...owner, virtual_path, folder_name }))).execute();
  const perms = Object.entries(o.permissions);
  if (perms.length > 0) await db.insertInto('permissions').values(perms.map(([virtual_path, p]) => ({ ...owner, virtual_path, perms: formatPerms(p) }))).execute();
  if (Object.keys(o.policy).length > 0) await db.insertInto('policies').values({ ...owner, ...policyToRow(o.policy) }).execute();
}

async function deleteOwnerParts(db: Db, kind: OwnerKind, name: string): Promise<void> {
  for (const table of ['mounts', 'permissions', 'policies'] as const) {
    await db.deleteFrom(table).where('owner_kind', '=', kind).where('owner_name', '=', name).execute();
  }
}

/** Permissions in their canonical order, so the same set always reads and compares the same. */
export function formatPerms(perms: readonly Permission[]): string {
  return permissionNames.filter((p) => perms.includes(p)).join(',');
}

function parsePerms(text: string): Permission[] {
  const items = text.split(',');
  return permissionNames.filter((p) => items.includes(p));
}

function folderFromRow(f: Selectable<FoldersTable>): FolderSpec {
  return {
    name: f.name,
    path: f.path,
    description: f.description,
    quotaBytes: f.quota_bytes,
    quotaFiles: f.quota_files,
    retentionMaxAgeDays: f.retention_max_age_days,
    retentionAfterDownload: f.retention_after_download !== 0,
  };
}

type PolicyColumns = Omit<PoliciesTable, 'owner_kind' | 'owner_name'>;

function policyToRow(p: PolicySpec): PolicyColumns {
  return {
    allowed_networks: p.allowedNetworks === undefined ? null : JSON.stringify(p.allowedNetworks),
    min_tls_version: p.minTlsVersion ?? null,
    client_certificates: p.clientCertificates === undefined ? null : JSON.stringify(p.clientCertificates),
    upload_bytes_per_second: p.uploadBytesPerSecond ?? null,
    download_bytes_per_second: p.downloadBytesPerSecond ?? null,
    max_sessions: p.maxSessions ?? null,
    quota_bytes: p.quotaBytes ?? null,
    quota_files: p.quotaFiles ?? null,
    require_data_session_reuse: p.requireDataSessionReuse === undefined ? null : p.requireDataSessionReuse ? 1 : 0,
    reuse_exception_reason: p.reuseException?.reason ?? null,
    reuse_exception_expires_at: p.reuseException?.expiresAt ?? null,
    auto_disable_after_days: p.autoDisableAfterDays ?? null,
    max_password_age_days: p.maxPasswordAgeDays ?? null,
  };
}

function policyFromRow(r: PolicyColumns): PolicySpec {
  const p: PolicySpec = {};
  if (r.allowed_networks !== null) p.allowedNetworks = JSON.parse(r.allowed_networks) as string[];
  if (r.min_tls_version !== null) p.minTlsVersion = r.min_tls_version as TlsVersion;
  if (r.client_certificates !== null) p.clientCertificates = JSON.parse(r.client_certificates) as string[];
  if (r.upload_bytes_per_second !== null) p.uploadBytesPerSecond = r.upload_bytes_per_second;
  if (r.download_bytes_per_second !== null) p.downloadBytesPerSecond = r.download_bytes_per_second;
  if (r.max_sessions !== null) p.maxSessions = r.max_sessions;
  if (r.quota_bytes !== null) p.quotaBytes = r.quota_bytes;
  if (r.quota_files !== null) p.quotaFiles = r.quota_files;
  if (r.require_data_session_reuse !== null) p.requireDataSessionReuse = r.require_data_session_reuse !== 0;
  if (r.reuse_exception_reason !== null && r.reuse_exception_expires_at !== null) p.reuseException = { reason: r.reuse_exception_reason, expiresAt: r.reuse_exception_expires_at };
  if (r.auto_disable_after_days !== null) p.autoDisableAfterDays = r.auto_disable_after_days;
  if (r.max_password_age_days !== null) p.maxPasswordAgeDays = r.max_password_age_days;
  return p;
}
