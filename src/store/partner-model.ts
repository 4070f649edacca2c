import type { Permission } from '../config/schema.js';

// The partner model as plain records, the same whether it comes from the store, from a partners file or goes to the
// access view: users, groups (templates a user inherits from), folders (named storage locations), and per user or
// group: mounts, per-path permissions and a policy. Values a user or group does not set are absent, so the
// effective value can say where it came from.

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface ReuseException {
  /** Why this partner's client may open data connections without resuming the control session's TLS session. */
  reason: string;
  /** Epoch milliseconds; the exception lapses by itself then. */
  expiresAt: number;
}

export interface PolicySpec {
  allowedNetworks?: string[];
  minTlsVersion?: TlsVersion;
  /** SHA-256 fingerprints, lower-case hex without colons. */
  clientCertificates?: string[];
  uploadBytesPerSecond?: number;
  downloadBytesPerSecond?: number;
  maxSessions?: number;
  /** Quota of the user's home (a user's own value or its group's). */
  quotaBytes?: number;
  quotaFiles?: number;
  /** A lasting replacement of tls.requireDataSessionReuse for this partner (false: exempt; true: held to it). */
  requireDataSessionReuse?: boolean;
  /** A time-bounded exemption with a reason; it lapses by itself. */
  reuseException?: ReuseException;
  autoDisableAfterDays?: number;
  maxPasswordAgeDays?: number;
}

export const POLICY_KEYS = [
  'allowedNetworks',
  'minTlsVersion',
  'clientCertificates',
  'uploadBytesPerSecond',
  'downloadBytesPerSecond',
  'maxSessions',
  'quotaBytes',
  'quotaFiles',
  'requireDataSessionReuse',
  'reuseException',
  'autoDisableAfterDays',
  'maxPasswordAgeDays',
] as const satisfies ReadonlyArray<keyof PolicySpec>;

export interface OwnerSpec {
  name: string;
  description: string;
  /** Local path template of the home ("{user}" replaced); null: none here. */
  home: string | null;
  /** Virtual path → folder name. */
  mounts: Record<string, string>;
  /** Virtual path → permissions granted at and below it (longest prefix wins). */
  permissions: Record<string, Permission[]>;
  policy: PolicySpec;
}

export type GroupSpec = OwnerSpec;

export interface UserSpec extends OwnerSpec {
  /** argon2id PHC string; null: no password set. */
  passwordHash: string | null;
  /** In order: the first group that sets a value gives it. */
  groups: string[];
  disabled: boolean;
  /** Epoch milliseconds after which logins are refused; null: never. */
  expiresAt: number | null;
}

export interface FolderSpec {
  name: string;
  /** Local path template; "{user}" is replaced by the name of the user who logs in. */
  path: string;
  description: string;
  quotaBytes: number | null;
  quotaFiles: number | null;
  retentionMaxAgeDays: number | null;
  retentionAfterDownload: boolean;
}

/** What the store holds about partners, or what a partners file declares. Keys are names. */
export interface PartnerSet {
  users: Record<string, UserSpec>;
  groups: Record<string, GroupSpec>;
  folders: Record<string, FolderSpec>;
}

/** State a user accumulates by using the server; never part of a partners file. */
export interface UserRuntime {
  lastLoginAt: number | null;
  passwordChangedAt: number | null;
  createdAt: number;
}

export function emptyPartnerSet(): PartnerSet {
  return { users: {}, groups: {}, folders: {} };
}

export const USER_TEMPLATE = '{user}';

/** A path template with the user name filled in. */
export function expandTemplate(template: string, user: string): string {
  return template.split(USER_TEMPLATE).join(user);
}

/**
 * A user, group or folder as written to the change log and the audit trail: everything but the password hash,
 * which is replaced by whether one is set.
 */
export function withoutSecrets(entity: UserSpec | GroupSpec | FolderSpec): Record<string, unknown> {
  if (!('passwordHash' in entity)) return { ...entity };
  const { passwordHash, ...rest } = entity;
  return { ...rest, passwordSet: passwordHash !== null };
}
