import type { FastifyRequest } from 'fastify';
import { execute, type PlannedChange } from '../../partners/apply.js';
import { crossCheck, folderOut, ownerOut, parseEntry, userOut, type EntityOf, type EntryKind } from '../../partners/partner-file.js';
import type { FolderSpec, GroupSpec, PartnerSet, UserSpec } from '../../store/partner-model.js';
import { loadPartners, loadUserRuntime } from '../../store/partner-repo.js';
import { actorOf, type AdminContext } from '../context.js';
import { ApiError, conflict, invalid, notFound } from '../errors.js';

// Users, groups and folders changed through the API or the pages take the path `ftpsd apply` and `ftpsd user` take:
// the entry is checked by the partners file's rules, the change is planned against the store inside one transaction
// and executed by partners/apply.ts, which writes the store and its change-log record (who, from where, before and
// after, without secrets) together. The server then writes that record to its audit trail and re-checks the open
// sessions of the users concerned at once.

const PLURAL = { folder: 'folders', group: 'groups', user: 'users' } as const;

export type Entry = Record<string, unknown>;

/** An entity as the API shows it: its partners-file entry with its name, without the password hash. */
export function entryOf(kind: EntryKind, entity: FolderSpec | GroupSpec | UserSpec): Entry {
  if (kind === 'folder') return { name: entity.name, ...folderOut(entity as FolderSpec) };
  if (kind === 'group') return { name: entity.name, ...ownerOut(entity as GroupSpec) };
  const u = entity as UserSpec;
  const { password: _hash, ...rest } = userOut(u);
  return { name: u.name, ...rest, passwordSet: u.passwordHash !== null };
}

export async function listEntities(ctx: AdminContext, kind: EntryKind): Promise<Entry[]> {
  const set = await loadPartners(ctx.server.store.db);
  return Object.values(set[PLURAL[kind]]).map((e) => entryOf(kind, e));
}

export async function getEntity(ctx: AdminContext, kind: EntryKind, name: string): Promise<Entry> {
  const set = await loadPartners(ctx.server.store.db);
  const entity = set[PLURAL[kind]][name];
  if (entity === undefined) throw notFound(`${kind} "${name}"`);
  const entry = entryOf(kind, entity);
  if (kind === 'user') {
    const runtime = await loadUserRuntime(ctx.server.store.db, name);
    entry.lastLoginAt = runtime?.lastLoginAt == null ? null : new Date(runtime.lastLoginAt).toISOString();
  }
  return entry;
}

export type ChangeMode = 'create' | 'replace' | 'delete';

/**
 * Creates, replaces or deletes one entity. `raw` is its partners-file entry (without name); a user's `password` is
 * plain text and replaces the hash (absent: the current one is kept). Returns the entity as stored.
 */
export async function changeEntity(ctx: AdminContext, request: FastifyRequest, kind: EntryKind, name: string, mode: ChangeMode, raw?: Entry, label?: string): Promise<Entry | null> {
  let parsed: FolderSpec | GroupSpec | UserSpec | null = null;
  let passwordHash: string | null | undefined;
  if (mode !== 'delete') {
    const { password, ...entry } = raw ?? {};
    const result = parseEntry(kind, name, entry);
    if (!result.ok) throw invalid(result.problems[0] ?? `invalid ${kind}`, result.problems);
    parsed = result.entity;
    // Hashed before the transaction: argon2 takes tens of milliseconds the store need not be held for.
    if (kind === 'user' && typeof password === 'string') passwordHash = await ctx.hasher.hash(password);
  }
  const store = ctx.server.store;
  const stored = await store.db.transaction().execute(async (trx) => {
    const set = await loadPartners(trx);
    const before = set[PLURAL[kind]][name] as FolderSpec | GroupSpec | UserSpec | undefined;
    if (mode === 'create' && before !== undefined) throw conflict(`${kind} "${name}" already exists`);
    if (mode !== 'create' && before === undefined) throw notFound(`${kind} "${name}"`);
    let after: FolderSpec | GroupSpec | UserSpec | undefined;
    if (parsed !== null) {
      after = kind === 'user' ? { ...(parsed as UserSpec), passwordHash: passwordHash !== undefined ? passwordHash : ((before as UserSpec | undefined)?.passwordHash ?? null) } : parsed;
    }
    const next = withEntity(set, kind, name, after);
    const problems = mode === 'delete' ? stillUsed(set, kind, name) : crossCheck(next);
    if (problems.length > 0) throw mode === 'delete' ? new ApiError(409, 'conflict', problems[0]!, problems) : invalid(problems[0]!, problems);
    const change: PlannedChange = { action: mode === 'replace' ? 'update' : mode, ...(label === undefined ? {} : { label }), kind, name, keys: [], before, after };
    await execute(trx, [change], actorOf(request), Date.now(), request.ip);
    return after ?? null;
  });
  await ctx.server.syncStore();
  return stored === null ? null : entryOf(kind, stored);
}

/** Changes one part of a user or group (its permissions, policy or mounts), everything else kept. */
export async function changePart(ctx: AdminContext, request: FastifyRequest, kind: 'user' | 'group', name: string, part: 'permissions' | 'policy' | 'mounts', value: unknown): Promise<Entry> {
  const current = await getEntity(ctx, kind, name);
  const { name: _n, passwordSet: _p, lastLoginAt: _l, ...entry } = current;
  const changed = await changeEntity(ctx, request, kind, name, 'replace', { ...entry, [part]: value }, `${part}_update`);
  return changed!;
}

/** A user's new password (plain text, hashed here); the rest of the user is kept. */
export async function setPassword(ctx: AdminContext, request: FastifyRequest, name: string, password: string): Promise<void> {
  const current = await getEntity(ctx, 'user', name);
  const { name: _n, passwordSet: _p, lastLoginAt: _l, ...entry } = current;
  await changeEntity(ctx, request, 'user', name, 'replace', { ...entry, password }, 'passwd');
}

function withEntity(set: PartnerSet, kind: EntryKind, name: string, entity: FolderSpec | GroupSpec | UserSpec | undefined): PartnerSet {
  const key = PLURAL[kind];
  const table = { ...set[key] } as Record<string, EntityOf<typeof kind>>;
  if (entity === undefined) delete table[name];
  else table[name] = entity as EntityOf<typeof kind>;
  return { ...set, [key]: table };
}

/** Why a group or folder cannot go yet: the users and groups that still use it. */
function stillUsed(set: PartnerSet, kind: EntryKind, name: string): string[] {
  const problems: string[] = [];
  if (kind === 'group') {
    for (const u of Object.values(set.users)) if (u.groups.includes(name)) problems.push(`group "${name}" still has member "${u.name}"`);
  }
  if (kind === 'folder') {
    for (const [k, owners] of [['user', set.users], ['group', set.groups]] as const) {
      for (const o of Object.values(owners)) {
        for (const [path, folder] of Object.entries(o.mounts)) if (folder === name) problems.push(`folder "${name}" is still mounted at ${path} by ${k} "${o.name}"`);
      }
    }
  }
  return problems;
}
