import type { Permission } from '../config/schema.js';
import { expandTemplate, POLICY_KEYS, type FolderSpec, type PartnerSet, type PolicySpec, type UserSpec } from '../store/partner-model.js';

// A user's effective values: its own where it sets them, else its groups' in the order it lists them, else none.
// Pure: records in, one view out, each value saying where it came from ("user", "group:NAME"), so `ftpsd user show`
// and the access checks read the same thing.

export type Source = 'user' | `group:${string}` | 'default';

export interface Sourced<T> {
  value: T;
  from: Source;
}

/** A folder (or the home) placed in the user's virtual tree. */
export interface EffectiveMount {
  /** Normalised virtual path: "/" for the home, "/partners/acme/outbox" for a folder. */
  path: string;
  /** The folder's name; "~home" for the home. */
  folder: string;
  /** Local path with "{user}" filled in, as written (relative paths resolve against the server's directory). */
  location: string;
  /** Quota usage key: "user:NAME" for the home, "folder:NAME" or "folder:NAME@USER" for a templated folder. */
  scope: string;
  quotaBytes: number | null;
  quotaFiles: number | null;
  retentionMaxAgeDays: number | null;
  retentionAfterDownload: boolean;
  from: Source;
}

export interface EffectiveRule {
  path: string;
  permissions: readonly Permission[];
  from: Source;
}

export type EffectivePolicy = { [K in keyof PolicySpec]-?: Sourced<PolicySpec[K]> };

export interface EffectiveUser {
  name: string;
  passwordHash: string | null;
  disabled: boolean;
  expiresAt: number | null;
  groups: readonly string[];
  home: Sourced<string | null>;
  /** Longest path first. */
  mounts: readonly EffectiveMount[];
  /** Longest path first. */
  permissions: readonly EffectiveRule[];
  policy: EffectivePolicy;
}

export const HOME_FOLDER = '~home';

export function effectiveUser(set: PartnerSet, name: string): EffectiveUser | null {
  const user = set.users[name];
  if (user === undefined) return null;
  // Owners from weakest to strongest: the last group first, the user last, so later writes win.
  const owners: Array<{ spec: UserSpec | PartnerSet['groups'][string]; from: Source }> = [
    ...user.groups
      .map((g) => set.groups[g])
      .filter((g) => g !== undefined)
      .reverse()
      .map((g) => ({ spec: g, from: `group:${g.name}` as Source })),
    { spec: user, from: 'user' },
  ];

  let home: Sourced<string | null> = { value: null, from: 'default' };
  const mounts = new Map<string, { folder: string; from: Source }>();
  const rules = new Map<string, EffectiveRule>();
  const policy = Object.fromEntries(POLICY_KEYS.map((k) => [k, { value: undefined, from: 'default' }])) as EffectivePolicy;
  for (const { spec, from } of owners) {
    if (spec.home !== null) home = { value: expandTemplate(spec.home, name), from };
    for (const [path, folder] of Object.entries(spec.mounts)) mounts.set(path, { folder, from });
    for (const [path, permissions] of Object.entries(spec.permissions)) rules.set(path, { path, permissions, from });
    for (const key of POLICY_KEYS) {
      if (spec.policy[key] !== undefined) (policy as Record<string, Sourced<unknown>>)[key] = { value: spec.policy[key], from };
    }
  }

  const placed: EffectiveMount[] = [];
  // A folder mounted at "/" takes the home's place.
  if (home.value !== null && !mounts.has('/')) {
    placed.push({
      path: '/',
      folder: HOME_FOLDER,
      location: home.value,
      scope: `user:${name}`,
      quotaBytes: policy.quotaBytes.value ?? null,
      quotaFiles: policy.quotaFiles.value ?? null,
      retentionMaxAgeDays: null,
      retentionAfterDownload: false,
      from: home.from,
    });
  }
  for (const [path, m] of mounts) {
    const folder = set.folders[m.folder];
    if (folder === undefined) continue; // the store's foreign key makes this impossible; a partners file is checked
    placed.push(folderMount(path, folder, name, m.from));
  }
  return {
    name,
    passwordHash: user.passwordHash,
    disabled: user.disabled,
    expiresAt: user.expiresAt,
    groups: user.groups,
    home,
    mounts: placed.sort(longestFirst),
    permissions: [...rules.values()].sort(longestFirst),
    policy,
  };
}

function folderMount(path: string, folder: FolderSpec, user: string, from: Source): EffectiveMount {
  const templated = folder.path.includes('{user}');
  return {
    path,
    folder: folder.name,
    location: expandTemplate(folder.path, user),
    scope: templated ? `folder:${folder.name}@${user}` : `folder:${folder.name}`,
    quotaBytes: folder.quotaBytes,
    quotaFiles: folder.quotaFiles,
    retentionMaxAgeDays: folder.retentionMaxAgeDays,
    retentionAfterDownload: folder.retentionAfterDownload,
    from,
  };
}

function longestFirst(a: { path: string }, b: { path: string }): number {
  return b.path.length - a.path.length || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}
