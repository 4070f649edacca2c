import type { Generated, Kysely, Migration } from 'kysely';

// The one place where a table of the store is described: the row types the queries are checked against, and the
// numbered migrations that create them. Both engines run the same migrations; the few differences (an
// auto-increment key) are spelt out here and nowhere else.
//
// Conventions, chosen so one query works on both engines:
// - times are epoch milliseconds in 64-bit integers (`*_at`); the PostgreSQL driver is told to return int8 as a number;
// - booleans are 0/1 integers (SQLite has no boolean type and better-sqlite3 binds none);
// - lists are JSON text (CIDRs, fingerprints); permission lists are comma-separated names.

export type Engine = 'sqlite' | 'postgres';
export type OwnerKind = 'user' | 'group';

export interface UsersTable {
  name: string;
  /** argon2id PHC string; null: no password login until one is set. */
  password_hash: string | null;
  /** Local path template of the home ("{user}" is replaced); null: the group's home, or a virtual root of mounts. */
  home: string | null;
  disabled: number;
  expires_at: number | null;
  last_login_at: number | null;
  password_changed_at: number | null;
  description: string;
  created_at: number;
  updated_at: number;
}

export interface GroupsTable {
  name: string;
  home: string | null;
  description: string;
  created_at: number;
  updated_at: number;
}

export interface UserGroupsTable {
  user_name: string;
  group_name: string;
  /** Order of the user's groups: the first group that sets a value gives it. */
  position: number;
}

export interface FoldersTable {
  name: string;
  /** Local path template ("{user}" is replaced by the name of the user who logs in). */
  path: string;
  description: string;
  quota_bytes: number | null;
  quota_files: number | null;
  /** Files older than this are deleted by the retention scheduler; null: kept. */
  retention_max_age_days: number | null;
  /** 1: the age counts from a file's first complete download, and files never downloaded are kept. */
  retention_after_download: number;
  created_at: number;
  updated_at: number;
}

export interface MountsTable {
  owner_kind: OwnerKind;
  owner_name: string;
  virtual_path: string;
  folder_name: string;
}

export interface PermissionsTable {
  owner_kind: OwnerKind;
  owner_name: string;
  virtual_path: string;
  /** Comma-separated permission names; empty: nothing allowed below this path. */
  perms: string;
}

/** One row per user or group that sets any policy value; a null column is "not set here" (inherited). */
export interface PoliciesTable {
  owner_kind: OwnerKind;
  owner_name: string;
  allowed_networks: string | null;
  min_tls_version: string | null;
  client_certificates: string | null;
  upload_bytes_per_second: number | null;
  download_bytes_per_second: number | null;
  max_sessions: number | null;
  quota_bytes: number | null;
  quota_files: number | null;
  /** 0/1: this owner's own tls.requireDataSessionReuse; null: not set here. */
  require_data_session_reuse: number | null;
  reuse_exception_reason: string | null;
  reuse_exception_expires_at: number | null;
  auto_disable_after_days: number | null;
  max_password_age_days: number | null;
}

export interface QuotaUsageTable {
  /** "user:NAME" (its home), "folder:NAME", or "folder:NAME@USER" for a folder whose path is templated. */
  scope: string;
  bytes: number;
  files: number;
  updated_at: number;
}

export interface BansTable {
  ip: string;
  until_at: number;
  reason: string;
  offences: number;
}

export interface BanOffencesTable {
  ip: string;
  count: number;
  last_ban_at: number;
}

export interface DownloadMarksTable {
  /** Real path of a file in a folder with retention after download. */
  real_path: string;
  first_at: number;
}

export interface ChangeLogTable {
  id: Generated<number>;
  at: number;
  /** Who: "cli:<os user>", "apply:<os user>", "system:<job>", "import", "admin:<account>". */
  actor: string;
  /** create, update, delete, disable, lapse, retention_delete, ... */
  action: string;
  entity_kind: string;
  entity_name: string;
  /** JSON of the entity before and after, without secrets; null for a create or a delete. */
  before: string | null;
  after: string | null;
  /** Address the change came from (admin API and web admin); null for the CLI and the server's own jobs. */
  ip: string | null;
}

export type AdminRole = 'admin' | 'operator' | 'auditor';

/** Accounts of the admin API and web admin (not FTP users). */
export interface AdminAccountsTable {
  name: string;
  /** argon2id PHC string. */
  password_hash: string;
  role: AdminRole;
  /** 1: the password was given to the account (first start, reset) and must be changed before anything else. */
  must_change_password: number;
  /** Base32 TOTP secret (RFC 6238) once confirmed; null: no second factor. */
  totp_secret: string | null;
  /** A secret being set up, not yet confirmed with a code. */
  totp_pending: string | null;
  /** Last TOTP time step accepted, so a code cannot be used twice. */
  totp_last_step: number | null;
  disabled: number;
  last_login_at: number | null;
  created_at: number;
  updated_at: number;
}

/** Login tokens (API "Bearer" and the web admin's cookie): only their SHA-256 is stored. */
export interface AdminTokensTable {
  token_hash: string;
  account: string;
  ip: string;
  created_at: number;
  expires_at: number;
}

/** API keys for automation: only their SHA-256 is stored; the key is shown once. */
export interface AdminApiKeysTable {
  id: string;
  key_hash: string;
  account: string;
  label: string;
  created_at: number;
  /** null: never expires. */
  expires_at: number | null;
  last_used_at: number | null;
}

export interface StoreMetaTable {
  key: string;
  value: string;
}

export interface EventActionsTable {
  name: string;
  /** 'webhook' or 'command'. */
  kind: string;
  /** JSON of the webhook or command settings (the webhook's secret included). */
  config: string;
  description: string;
  created_at: number;
  updated_at: number;
}

export interface EventRulesTable {
  name: string;
  /** Comma-separated event names. */
  events: string;
  /** JSON: users, groups, paths, minSize, maxSize, results. */
  filter: string;
  /** Comma-separated action names. */
  actions: string;
  enabled: number;
  description: string;
  created_at: number;
  updated_at: number;
}

/** One row per published event that some rule wanted; its payload is what every action receives. */
export interface EventsTable {
  /** The idempotency key receivers see. */
  id: string;
  type: string;
  at: number;
  node: string;
  payload: string;
}

/** One row per event and action: the durable queue, its leases and its dead letters. */
export interface EventDeliveriesTable {
  id: Generated<number>;
  event_id: string;
  action: string;
  /** The rule that sent the event to the action (the first one, when several did). */
  rule: string;
  /** pending, delivered, failed (dead letter). */
  state: string;
  attempts: number;
  /** Not before this time (backoff). */
  next_at: number;
  /** The node process holding the delivery, until lease_until; a lease past its time is free to take again. */
  lease_owner: string | null;
  lease_until: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

/** A logged-in session on some node, so a user's session cap counts every node's sessions. */
export interface ClusterSessionsTable {
  /** "<node id>/<session id>". */
  id: string;
  node_id: string;
  user_name: string;
  ip: string;
  started_at: number;
  /** Refreshed by the node every cluster.heartbeatIntervalMs; older than cluster.sessionExpiryMs: its node died. */
  heartbeat_at: number;
}

/** A certificate one node ordered (ACME) for every node to install. */
export interface ClusterCertificatesTable {
  /** "acme" for the ACME certificate. */
  name: string;
  key_pem: string;
  cert_pem: string;
  /** JSON: which CA and names it was ordered for (acme/acme-store.ts StoredCertificateMeta). */
  meta: string;
  updated_at: number;
  /** Node id of the node that stored it. */
  updated_by: string;
}

export interface Database {
  users: UsersTable;
  groups: GroupsTable;
  user_groups: UserGroupsTable;
  folders: FoldersTable;
  mounts: MountsTable;
  permissions: PermissionsTable;
  policies: PoliciesTable;
  quota_usage: QuotaUsageTable;
  bans: BansTable;
  ban_offences: BanOffencesTable;
  download_marks: DownloadMarksTable;
  change_log: ChangeLogTable;
  store_meta: StoreMetaTable;
  admin_accounts: AdminAccountsTable;
  admin_tokens: AdminTokensTable;
  admin_api_keys: AdminApiKeysTable;
  event_actions: EventActionsTable;
  event_rules: EventRulesTable;
  events: EventsTable;
  event_deliveries: EventDeliveriesTable;
  cluster_sessions: ClusterSessionsTable;
  cluster_certificates: ClusterCertificatesTable;
}

type Db = Kysely<unknown>;

/** Migrations by number; names sort in the order they run. Never edit one that has shipped: add the next. */
export function migrations(engine: Engine): Record<string, Migration> {
  return {
    '0001_partner_store': {
      async up(db: Db) {
        const ownerKey = (t: string) => `${t}_pk`;
        await db.schema
          .createTable('users')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('password_hash', 'text')
          .addColumn('home', 'text')
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('expires_at', 'bigint')
          .addColumn('last_login_at', 'bigint')
          .addColumn('password_changed_at', 'bigint')
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('groups')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('home', 'text')
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('user_groups')
          .addColumn('user_name', 'text', (c) => c.notNull().references('users.name').onDelete('cascade'))
          .addColumn('group_name', 'text', (c) => c.notNull().references('groups.name').onDelete('restrict'))
          .addColumn('position', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint(ownerKey('user_groups'), ['user_name', 'group_name'])
          .execute();
        await db.schema
          .createTable('folders')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('quota_bytes', 'bigint')
          .addColumn('quota_files', 'bigint')
          .addColumn('retention_max_age_days', 'double precision')
          .addColumn('retention_after_download', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('mounts')
          .addColumn('owner_kind', 'text', (c) => c.notNull())
          .addColumn('owner_name', 'text', (c) => c.notNull())
          .addColumn('virtual_path', 'text', (c) => c.notNull())
          .addColumn('folder_name', 'text', (c) => c.notNull().references('folders.name').onDelete('restrict'))
          .addPrimaryKeyConstraint(ownerKey('mounts'), ['owner_kind', 'owner_name', 'virtual_path'])
          .execute();
        await db.schema
          .createTable('permissions')
          .addColumn('owner_kind', 'text', (c) => c.notNull())
          .addColumn('owner_name', 'text', (c) => c.notNull())
          .addColumn('virtual_path', 'text', (c) => c.notNull())
          .addColumn('perms', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint(ownerKey('permissions'), ['owner_kind', 'owner_name', 'virtual_path'])
          .execute();
        await db.schema
          .createTable('policies')
          .addColumn('owner_kind', 'text', (c) => c.notNull())
          .addColumn('owner_name', 'text', (c) => c.notNull())
          .addColumn('allowed_networks', 'text')
          .addColumn('min_tls_version', 'text')
          .addColumn('client_certificates', 'text')
          .addColumn('upload_bytes_per_second', 'bigint')
          .addColumn('download_bytes_per_second', 'bigint')
          .addColumn('max_sessions', 'integer')
          .addColumn('quota_bytes', 'bigint')
          .addColumn('quota_files', 'bigint')
          .addColumn('require_data_session_reuse', 'integer')
          .addColumn('reuse_exception_reason', 'text')
          .addColumn('reuse_exception_expires_at', 'bigint')
          .addColumn('auto_disable_after_days', 'double precision')
          .addColumn('max_password_age_days', 'double precision')
          .addPrimaryKeyConstraint(ownerKey('policies'), ['owner_kind', 'owner_name'])
          .execute();
        await db.schema
          .createTable('quota_usage')
          .addColumn('scope', 'text', (c) => c.primaryKey())
          .addColumn('bytes', 'bigint', (c) => c.notNull())
          .addColumn('files', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('bans')
          .addColumn('ip', 'text', (c) => c.primaryKey())
          .addColumn('until_at', 'bigint', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('offences', 'integer', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('ban_offences')
          .addColumn('ip', 'text', (c) => c.primaryKey())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('last_ban_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('download_marks')
          .addColumn('real_path', 'text', (c) => c.primaryKey())
          .addColumn('first_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('change_log')
          .addColumn('id', engine === 'postgres' ? 'bigserial' : 'integer', (c) => (engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('entity_kind', 'text', (c) => c.notNull())
          .addColumn('entity_name', 'text', (c) => c.notNull())
          .addColumn('before', 'text')
          .addColumn('after', 'text')
          .execute();
        await db.schema.createIndex('change_log_entity').on('change_log').columns(['entity_kind', 'entity_name']).execute();
        await db.schema
          .createTable('store_meta')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
      async down(db: Db) {
        for (const t of ['store_meta', 'change_log', 'download_marks', 'ban_offences', 'bans', 'quota_usage', 'policies', 'permissions', 'mounts', 'folders', 'user_groups', 'groups', 'users']) {
          await db.schema.dropTable(t).execute();
        }
      },
    },
    '0002_events': {
      async up(db: Db) {
        await db.schema
          .createTable('event_actions')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('config', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('event_rules')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('filter', 'text', (c) => c.notNull())
          .addColumn('actions', 'text', (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('event_deliveries')
          .addColumn('id', engine === 'postgres' ? 'bigserial' : 'integer', (c) => (engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('rule', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('delivered_at', 'bigint')
          .addUniqueConstraint('event_deliveries_event_action', ['event_id', 'action'])
          .execute();
        await db.schema.createIndex('event_deliveries_due').on('event_deliveries').columns(['state', 'next_at']).execute();
      },
      async down(db: Db) {
        for (const t of ['event_deliveries', 'events', 'event_rules', 'event_actions']) await db.schema.dropTable(t).execute();
      },
    },
    '0003_admin': {
      async up(db: Db) {
        await db.schema.alterTable('change_log').addColumn('ip', 'text').execute();
        await db.schema
          .createTable('admin_accounts')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('totp_secret', 'text')
          .addColumn('totp_pending', 'text')
          .addColumn('totp_last_step', 'bigint')
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_login_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('admin_tokens')
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('account', 'text', (c) => c.notNull().references('admin_accounts.name').onDelete('cascade'))
          .addColumn('ip', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('admin_tokens_account').on('admin_tokens').column('account').execute();
        await db.schema
          .createTable('admin_api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('key_hash', 'text', (c) => c.notNull().unique())
          .addColumn('account', 'text', (c) => c.notNull().references('admin_accounts.name').onDelete('cascade'))
          .addColumn('label', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('last_used_at', 'bigint')
          .execute();
      },
      async down(db: Db) {
        for (const t of ['admin_api_keys', 'admin_tokens', 'admin_accounts']) await db.schema.dropTable(t).execute();
        await db.schema.alterTable('change_log').dropColumn('ip').execute();
      },
    },
    '0004_cluster': {
      async up(db: Db) {
        await db.schema
          .createTable('cluster_sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('ip', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('cluster_sessions_user').on('cluster_sessions').columns(['user_name', 'heartbeat_at']).execute();
        await db.schema.createIndex('cluster_sessions_node').on('cluster_sessions').column('node_id').execute();
        await db.schema
          .createTable('cluster_certificates')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('key_pem', 'text', (c) => c.notNull())
          .addColumn('cert_pem', 'text', (c) => c.notNull())
          .addColumn('meta', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('cluster_certificates').execute();
        await db.schema.dropTable('cluster_sessions').execute();
      },
    },
  };
}
