import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { cidr, permissionNames } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { POLICY_KEYS, type FolderSpec, type GroupSpec, type OwnerSpec, type PartnerSet, type PolicySpec, type UserSpec } from '../store/partner-model.js';
import { formatPerms } from '../store/partner-repo.js';
import type { EventHooks } from '../store/event-model.js';
import { checkHooks, eventsSectionSchema, formatHooks, hooksFromSection } from './event-hooks-file.js';

// The partners file: users, groups, folders, mounts, permissions and policies as code. `ftpsd apply -f` makes the
// store match it, `ftpsd export` writes it. Every problem is reported with the entry and key it is in
// ("users.acme.permissions./inbox: unknown permission \"fly\""), and a file with any problem changes nothing.

export const NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const FINGERPRINT = /^([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i;

const virtualPath = z.string().refine((p) => p === '/' || (/^\/[^\0\\]*[^/]$/.test(p) && !p.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')), 'must be an absolute virtual path such as /inbox (no trailing slash, no . or ..)');
const count = z.number().int().nonnegative();
const days = z.number().nonnegative();
/** ISO 8601 date or time ("2027-01-01", "2027-01-01T12:00:00Z"). */
const time = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const ms = v instanceof Date ? v.getTime() : Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'must be a date such as 2027-01-01 or 2027-01-01T12:00:00Z' });
    return z.NEVER;
  }
  return ms;
});

const policySchema = z
  .object({
    allowedNetworks: z.array(cidr).optional(),
    minTlsVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
    clientCertificates: z.array(z.string().regex(FINGERPRINT, 'must be a SHA-256 fingerprint (64 hex digits, colons allowed)')).optional(),
    uploadBytesPerSecond: count.optional(),
    downloadBytesPerSecond: count.optional(),
    maxSessions: z.number().int().positive().optional(),
    quotaBytes: count.optional(),
    quotaFiles: count.optional(),
    requireDataSessionReuse: z.boolean().optional(),
    reuseException: z.object({ reason: z.string().min(1, 'must say why'), expiresAt: time }).strict().optional(),
    autoDisableAfterDays: days.optional(),
    maxPasswordAgeDays: days.optional(),
  })
  .strict();

const ownerShape = {
  description: z.string().default(''),
  home: z.string().min(1).nullable().default(null),
  mounts: z.record(virtualPath, z.string().regex(NAME, 'must name a folder')).default({}),
  permissions: z.record(virtualPath, z.array(z.enum(permissionNames))).default({}),
  policy: policySchema.default({}),
};

const folderEntrySchema = z
  .object({
    path: z.string().min(1),
    description: z.string().default(''),
    quota: z.object({ bytes: count.optional(), files: count.optional() }).strict().default({}),
    retention: z.object({ maxAgeDays: days.optional(), afterDownload: z.boolean().default(false) }).strict().default({ afterDownload: false }),
  })
  .strict();
const groupEntrySchema = z.object(ownerShape).strict();
const userEntrySchema = z
  .object({
    ...ownerShape,
    /** argon2 hash; absent keeps the user's current password. */
    password: z.string().startsWith('$argon2', 'must be an argon2 hash (set passwords with `ftpsd user passwd`)').optional(),
    groups: z.array(z.string()).default([]),
    disabled: z.boolean().default(false),
    expiresAt: time.nullable().default(null),
  })
  .strict();

const fileSchema = z
  .object({
    folders: z.record(z.string().regex(NAME, 'folder names use letters, digits and . _ @ -'), folderEntrySchema).default({}),
    groups: z.record(z.string().regex(NAME, 'group names use letters, digits and . _ @ -'), groupEntrySchema).default({}),
    users: z.record(z.string().regex(NAME, 'user names use letters, digits and . _ @ -'), userEntrySchema).default({}),
    /** Event hooks; absent: the store's rules and actions are left as they are. */
    events: eventsSectionSchema.optional(),
  })
  .strict();

/** A parsed partners file. A user whose password is absent keeps the one it has (`passwordHash: undefined`). */
export interface PartnerFile {
  set: PartnerSet;
  keepPassword: ReadonlySet<string>;
  /** Event rules and actions; undefined when the file has no `events:` section (the store's are kept). */
  events?: EventHooks;
}

export function parsePartnerFile(text: string, source: string): PartnerFile {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`${source} is not valid YAML`, [(err as Error).message.split('\n')[0] ?? '']);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${source} is invalid; nothing was changed`, parsed.error.issues.map((i) => `${issuePath(i.path)}: ${issueMessage(i)}`));
  const data = parsed.data;
  const set: PartnerSet = { users: {}, groups: {}, folders: {} };
  const keepPassword = new Set<string>();
  for (const [name, f] of Object.entries(data.folders)) set.folders[name] = folderFromEntry(name, f);
  for (const [name, g] of Object.entries(data.groups)) set.groups[name] = { name, ...owner(g) };
  for (const [name, u] of Object.entries(data.users)) {
    if (u.password === undefined) keepPassword.add(name);
    set.users[name] = userFromEntry(name, u);
  }
  const events = data.events === undefined ? undefined : hooksFromSection(data.events);
  const problems = [...crossCheck(set), ...(events === undefined ? [] : checkHooks(events, { users: new Set(Object.keys(set.users)), groups: new Set(Object.keys(set.groups)) }))];
  if (problems.length > 0) throw new ConfigError(`${source} is invalid; nothing was changed`, problems);
  return { set, keepPassword, ...(events === undefined ? {} : { events }) };
}

export type EntryKind = 'folder' | 'group' | 'user';
export type EntityOf<K extends EntryKind> = K extends 'folder' ? FolderSpec : K extends 'group' ? GroupSpec : UserSpec;

/**
 * One folder, group or user written as in a partners file (without its name, which is the key there), checked by the
 * same rules; problems are named as the file would name them ("users.acme.permissions./inbox: ..."). A user's
 * `password` must be absent: the caller sets the hash. Names used in it are not checked here (see crossCheck).
 */
export function parseEntry<K extends EntryKind>(kind: K, name: string, raw: unknown): { ok: true; entity: EntityOf<K> } | { ok: false; problems: string[] } {
  const where = `${kind}s.${name}`;
  const nameProblem = NAME.test(name) ? [] : [`${where}: ${kind} names use letters, digits and . _ @ - (at most 64)`];
  const schema = kind === 'folder' ? folderEntrySchema : kind === 'group' ? groupEntrySchema : userEntrySchema.omit({ password: true });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, problems: [...nameProblem, ...parsed.error.issues.map((i) => `${where}${i.path.length === 0 ? '' : `.${issuePath(i.path)}`}: ${issueMessage(i)}`)] };
  if (nameProblem.length > 0) return { ok: false, problems: nameProblem };
  const data = parsed.data as never;
  const entity = kind === 'folder' ? folderFromEntry(name, data) : kind === 'group' ? { name, ...owner(data) } : userFromEntry(name, data);
  return { ok: true, entity: entity as EntityOf<K> };
}

function folderFromEntry(name: string, f: z.infer<typeof folderEntrySchema>): FolderSpec {
  return {
    name,
    path: f.path,
    description: f.description,
    quotaBytes: f.quota.bytes ?? null,
    quotaFiles: f.quota.files ?? null,
    retentionMaxAgeDays: f.retention.maxAgeDays ?? null,
    retentionAfterDownload: f.retention.afterDownload,
  };
}

function userFromEntry(name: string, u: Omit<z.infer<typeof userEntrySchema>, 'password'> & { password?: string }): UserSpec {
  return { name, ...owner(u), passwordHash: u.password ?? null, groups: u.groups, disabled: u.disabled, expiresAt: u.expiresAt };
}

function owner(o: z.infer<z.ZodObject<typeof ownerShape>>): Omit<OwnerSpec, 'name'> {
  const permissions: OwnerSpec['permissions'] = {};
  for (const [path, perms] of Object.entries(o.permissions)) permissions[path] = permissionNames.filter((p) => perms.includes(p));
  const policy = { ...o.policy } as PolicySpec;
  if (policy.clientCertificates !== undefined) policy.clientCertificates = policy.clientCertificates.map((f) => f.replace(/:/g, '').toLowerCase());
  return { description: o.description, home: o.home, mounts: { ...o.mounts }, permissions, policy };
}

/** What a schema cannot see: names that must exist elsewhere in the file. */
export function crossCheck(set: PartnerSet): string[] {
  const problems: string[] = [];
  const owners: Array<[string, OwnerSpec]> = [...Object.values(set.groups).map((g) => [`groups.${g.name}`, g] as [string, OwnerSpec]), ...Object.values(set.users).map((u) => [`users.${u.name}`, u] as [string, OwnerSpec])];
  for (const [where, o] of owners) {
    for (const [path, folder] of Object.entries(o.mounts)) {
      if (set.folders[folder] === undefined) problems.push(`${where}.mounts.${path}: unknown folder "${folder}" (not under folders:)`);
    }
  }
  for (const u of Object.values(set.users)) {
    u.groups.forEach((g, i) => {
      if (set.groups[g] === undefined) problems.push(`users.${u.name}.groups.${i}: unknown group "${g}" (not under groups:)`);
    });
    if (new Set(u.groups).size !== u.groups.length) problems.push(`users.${u.name}.groups: lists a group twice`);
  }
  return problems;
}

/** A record key's own check says what is wrong with it ("must be an absolute virtual path"), not zod's "Invalid key". */
function issueMessage(i: z.core.$ZodIssue): string {
  if (i.code === 'invalid_key') return i.issues.map((k) => k.message).join('; ') || i.message;
  return i.message;
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

/** The partners file of a partner set; parsing it gives the same set back. */
export function formatPartnerFile(set: PartnerSet, header = true, hooks?: EventHooks): string {
  const doc: Record<string, unknown> = {};
  const folders = Object.values(set.folders).sort(byName);
  const groups = Object.values(set.groups).sort(byName);
  const users = Object.values(set.users).sort(byName);
  if (folders.length > 0) doc.folders = Object.fromEntries(folders.map((f) => [f.name, folderOut(f)]));
  if (groups.length > 0) doc.groups = Object.fromEntries(groups.map((g) => [g.name, ownerOut(g)]));
  if (users.length > 0) doc.users = Object.fromEntries(users.map((u) => [u.name, userOut(u)]));
  const events = hooks === undefined ? undefined : formatHooks(hooks);
  if (events !== undefined) doc.events = events;
  const body = Object.keys(doc).length === 0 ? '{}\n' : stringifyYaml(doc, { lineWidth: 0 });
  return header ? `# ftpsd partners: apply with \`ftpsd apply -f FILE\`; see docs/admin-guide.md ("Partners file").\n${body}` : body;
}

export function folderOut(f: FolderSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { path: f.path };
  if (f.description !== '') out.description = f.description;
  const quota = { ...(f.quotaBytes === null ? {} : { bytes: f.quotaBytes }), ...(f.quotaFiles === null ? {} : { files: f.quotaFiles }) };
  if (Object.keys(quota).length > 0) out.quota = quota;
  if (f.retentionMaxAgeDays !== null || f.retentionAfterDownload) {
    out.retention = { ...(f.retentionMaxAgeDays === null ? {} : { maxAgeDays: f.retentionMaxAgeDays }), ...(f.retentionAfterDownload ? { afterDownload: true } : {}) };
  }
  return out;
}

export function ownerOut(o: OwnerSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.description !== '') out.description = o.description;
  if (o.home !== null) out.home = o.home;
  if (Object.keys(o.mounts).length > 0) out.mounts = sortKeys(o.mounts);
  if (Object.keys(o.permissions).length > 0) out.permissions = Object.fromEntries(Object.entries(sortKeys(o.permissions)).map(([p, perms]) => [p, formatPerms(perms).split(',').filter((x) => x !== '')]));
  const policy: Record<string, unknown> = {};
  for (const key of POLICY_KEYS) {
    const v = o.policy[key];
    if (v === undefined) continue;
    policy[key] = key === 'reuseException' ? { reason: (v as { reason: string }).reason, expiresAt: new Date((v as { expiresAt: number }).expiresAt).toISOString() } : v;
  }
  if (Object.keys(policy).length > 0) out.policy = policy;
  return out;
}

export function userOut(u: UserSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (u.passwordHash !== null) out.password = u.passwordHash;
  if (u.groups.length > 0) out.groups = u.groups;
  if (u.disabled) out.disabled = true;
  if (u.expiresAt !== null) out.expiresAt = new Date(u.expiresAt).toISOString();
  return { ...out, ...ownerOut(u) };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
