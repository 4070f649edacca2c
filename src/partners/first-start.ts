import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { HASH_PARAMS } from '../auth/password-hasher.js';
import { readUsersFile, type UserRecord } from '../auth/users-file.js';
import { permissionNames, type Permission } from '../config/schema.js';
import { readBanFile } from '../defender/ban-file.js';
import { saveBanChanges } from '../store/ban-repo.js';
import { countAccounts, insertAccount } from '../store/admin-repo.js';
import { getMeta, recordChange, setMeta } from '../store/change-log.js';
import type { Store } from '../store/open-store.js';
import type { UserSpec } from '../store/partner-model.js';
import { loadPartners, userNames } from '../store/partner-repo.js';
import { execute } from './apply.js';

// The first start on a store: files of earlier versions (users.yaml, bans.json) are imported once, argon2 hashes
// as they are; afterwards the store is the only place users and bans live, and those files are left alone.

const INITIALIZED = 'initialized_at';

export interface FirstStartReport {
  /** Null when the store was set up before (nothing imported this time). */
  importedUsers: string[] | null;
  importedBans: number;
}

export async function importLegacyFiles(store: Store, files: { usersFile: string; bansFile: string }): Promise<FirstStartReport> {
  return store.db.transaction().execute(async (trx) => {
    if ((await getMeta(trx, INITIALIZED)) !== null) return { importedUsers: null, importedBans: 0 };
    const now = Date.now();
    const importedUsers: string[] = [];
    if (existsSync(files.usersFile) && (await userNames(trx)).length === 0) {
      const data = readUsersFile(files.usersFile);
      const plan = Object.entries(data.users).map(([name, rec]) => ({ action: 'create' as const, kind: 'user' as const, name, keys: [], after: userFromRecord(name, rec) }));
      await execute(trx, plan, `import:${files.usersFile}`, now);
      importedUsers.push(...plan.map((p) => p.name));
    }
    let importedBans = 0;
    if (existsSync(files.bansFile)) {
      const state = readBanFile(files.bansFile, now);
      await saveBanChanges(trx, { bans: state.bans, removedBans: [], offences: state.offences, removedOffences: [] }, now);
      importedBans = state.bans.length;
    }
    await setMeta(trx, INITIALIZED, new Date(now).toISOString());
    return { importedUsers, importedBans };
  });
}

/**
 * A users-file entry as a store user: its home, its permissions at "/", its networks, certificates and rates as its
 * policy. Before `overwrite` existed, `upload` also replaced files; an imported user keeps that.
 */
export function userFromRecord(name: string, rec: UserRecord): UserSpec {
  const perms: Permission[] = rec.permissions.includes('upload') && !rec.permissions.includes('overwrite') ? [...rec.permissions, 'overwrite'] : [...rec.permissions];
  const policy: UserSpec['policy'] = {};
  if (rec.allowedNetworks.length > 0) policy.allowedNetworks = rec.allowedNetworks;
  if (rec.clientCertificates.length > 0) policy.clientCertificates = rec.clientCertificates.map((f) => f.replace(/:/g, '').toLowerCase());
  if (rec.uploadBytesPerSecond !== undefined) policy.uploadBytesPerSecond = rec.uploadBytesPerSecond;
  if (rec.downloadBytesPerSecond !== undefined) policy.downloadBytesPerSecond = rec.downloadBytesPerSecond;
  if (rec.requireDataSessionReuse !== undefined) policy.requireDataSessionReuse = rec.requireDataSessionReuse;
  return {
    name,
    description: '',
    home: rec.home,
    passwordHash: rec.password,
    groups: [],
    disabled: rec.disabled,
    expiresAt: null,
    mounts: {},
    permissions: { '/': permissionNames.filter((p) => perms.includes(p)) },
    policy,
  };
}

/** With no user at all, one `demo` user (home demoHome, every permission) whose random password is returned once. */
export async function ensureDemoUser(store: Store, demoHome: string): Promise<string | null> {
  if (Object.keys((await loadPartners(store.db)).users).length > 0) return null;
  const password = randomBytes(12).toString('base64url');
  const demo: UserSpec = {
    name: 'demo',
    description: 'created at first start',
    home: demoHome,
    passwordHash: await argon2.hash(password, HASH_PARAMS),
    groups: [],
    disabled: false,
    expiresAt: null,
    mounts: {},
    permissions: { '/': [...permissionNames] },
    policy: {},
  };
  await store.db.transaction().execute((trx) => execute(trx, [{ action: 'create', kind: 'user', name: 'demo', keys: [], after: demo }], 'system:first-start', Date.now()));
  return password;
}

/**
 * With no admin account at all, one account `admin` (role admin) with a random one-time password, returned once: the
 * web admin and the API ask for a new password at its first login.
 */
export async function ensureFirstAdmin(store: Store): Promise<string | null> {
  if ((await countAccounts(store.db)) > 0) return null;
  const password = randomBytes(12).toString('base64url');
  const hash = await argon2.hash(password, HASH_PARAMS);
  const now = Date.now();
  await store.db.transaction().execute(async (trx) => {
    await insertAccount(trx, { name: 'admin', role: 'admin', passwordHash: hash, mustChangePassword: true }, now);
    await recordChange(trx, { actor: 'system:first-start', action: 'create', entityKind: 'admin', entityName: 'admin', after: { role: 'admin', mustChangePassword: true } }, now);
  });
  return password;
}
