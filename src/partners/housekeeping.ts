import { unlink } from 'node:fs/promises';
import { effectiveUser } from '../access/effective.js';
import { recordChange } from '../store/change-log.js';
import type { Store } from '../store/open-store.js';
import { loadPartners, loadUserRuntime } from '../store/partner-repo.js';
import { addUsage, downloadMarks, dropDownloadMarks, setUsage, type Usage } from '../store/quota-repo.js';
import { PARTIAL_PREFIX } from '../storage/upload-names.js';
import { isUploadArtifact } from '../storage/upload-names.js';
import { isS3Path } from '../storage/s3-place.js';
import { walkFiles } from '../storage/tree-walk.js';
import { allLocations, countUsage } from './locations.js';

// Jobs that keep the partner model true over time, run by the server's scheduler and by the CLI: retention per
// folder, expiry of kept partial uploads, idle accounts disabled, lapsed data-session-reuse exceptions, and quota
// scans. Each change is a change-log record, which the running server writes to its audit trail.

const DAY_MS = 86_400_000;
const EXPIRY_RECORD_WINDOW_MS = 7 * DAY_MS;

export interface RetentionDeletion {
  scope: string;
  path: string;
  size: number;
  /** What the age was counted from: the file's modification time or its first complete download. */
  since: 'modified' | 'downloaded';
  ageDays: number;
}

export interface RetentionReport {
  deleted: RetentionDeletion[];
  partialsRemoved: string[];
}

/** Deletes what retention says is due (or, with dryRun, only says so). */
export async function runRetention(store: Store, opts: { resolve: (p: string) => string; partialMaxAgeMs: number; dryRun: boolean; now?: number; actor?: string; ip?: string }): Promise<RetentionReport> {
  const now = opts.now ?? Date.now();
  const actor = opts.actor ?? 'system:retention';
  const from = opts.ip === undefined ? {} : { ip: opts.ip };
  const set = await loadPartners(store.db);
  const report: RetentionReport = { deleted: [], partialsRemoved: [] };
  for (const loc of allLocations(set, opts.resolve)) {
    // Object storage keeps no partials, and ages its objects by the bucket's own lifecycle rules.
    if (isS3Path(loc.root)) continue;
    const maxAgeDays = loc.mount.retentionMaxAgeDays;
    const afterDownload = loc.mount.retentionAfterDownload;
    const marks = afterDownload ? await downloadMarks(store.db, loc.root) : new Map<string, number>();
    const seen = new Set<string>();
    for await (const f of walkFiles(loc.root)) {
      if (f.name.startsWith(PARTIAL_PREFIX)) {
        if (now - f.mtimeMs >= opts.partialMaxAgeMs) {
          report.partialsRemoved.push(f.path);
          if (!opts.dryRun) {
            await unlink(f.path).catch(() => undefined);
            await recordChange(store.db, { actor, action: 'partial_expired', entityKind: 'file', entityName: f.path, before: { scope: loc.scope, size: f.size, modified: new Date(f.mtimeMs).toISOString() }, ...from }, now);
          }
        }
        continue;
      }
      if (isUploadArtifact(f.name) || maxAgeDays === null) continue;
      seen.add(f.path);
      const since = afterDownload ? marks.get(f.path) : f.mtimeMs;
      if (since === undefined || now - since < maxAgeDays * DAY_MS) continue;
      const deletion: RetentionDeletion = { scope: loc.scope, path: f.path, size: f.size, since: afterDownload ? 'downloaded' : 'modified', ageDays: Math.floor(((now - since) / DAY_MS) * 100) / 100 };
      report.deleted.push(deletion);
      if (opts.dryRun) continue;
      try {
        await unlink(f.path);
      } catch {
        continue; // gone meanwhile
      }
      seen.delete(f.path);
      await addUsage(store.db, loc.scope, { bytes: -f.size, files: -1 }, now);
      await recordChange(store.db, { actor, action: 'retention_delete', entityKind: 'file', entityName: f.path, before: { folder: loc.mount.folder, scope: loc.scope, size: f.size, since: deletion.since, ageDays: deletion.ageDays }, ...from }, now);
    }
    // Marks of files deleted or moved away are of no further use.
    if (!opts.dryRun) await dropDownloadMarks(store.db, [...marks.keys()].filter((p) => !seen.has(p)));
  }
  return report;
}

/** Counts every location anew and stores the counts; returns them with the previous ones. */
export async function scanQuota(store: Store, resolve: (p: string) => string, count: (root: string) => Promise<Usage> = countUsage): Promise<Array<{ scope: string; root: string; usage: Usage; limits: { bytes: number | null; files: number | null } }>> {
  const set = await loadPartners(store.db);
  const out = [];
  for (const loc of allLocations(set, resolve)) {
    const usage = await count(loc.root);
    await setUsage(store.db, loc.scope, usage);
    out.push({ scope: loc.scope, root: loc.root, usage, limits: { bytes: loc.mount.quotaBytes, files: loc.mount.quotaFiles } });
  }
  return out;
}

/**
 * Disables users whose autoDisableAfterDays passed without a login, and lifts data-session-reuse exceptions whose
 * expiry passed (the check itself already ignores them; this records the lapse and clears them from the store).
 */
export async function runLifecycle(store: Store, now = Date.now()): Promise<{ disabled: string[]; lapsed: string[]; expired: string[] }> {
  const disabled: string[] = [];
  const expiredNames: string[] = [];
  const lapsed: string[] = [];
  const set = await loadPartners(store.db);
  for (const name of Object.keys(set.users)) {
    const eff = effectiveUser(set, name);
    const days = eff?.policy.autoDisableAfterDays.value;
    if (eff === null || eff === undefined || eff.disabled || days === undefined) continue;
    const runtime = await loadUserRuntime(store.db, name);
    const last = runtime?.lastLoginAt ?? runtime?.createdAt ?? now;
    if (now - last < days * DAY_MS) continue;
    await store.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ disabled: 1, updated_at: now }).where('name', '=', name).execute();
      await recordChange(trx, { actor: 'system:lifecycle', action: 'disable', entityKind: 'user', entityName: name, before: { disabled: false }, after: { disabled: true, reason: `no login for ${days} days`, lastLoginAt: runtime?.lastLoginAt == null ? null : new Date(runtime.lastLoginAt).toISOString() } }, now);
    });
    disabled.push(name);
  }
  // Expiry needs no change to take effect (logins check it); it is recorded once, so the audit trail and the
  // user_expired event say when it passed. Only recent expiries: an upgrade does not announce ones long past.
  const expired = await store.db.selectFrom('users').select(['name', 'expires_at']).where('expires_at', '<=', now).where('expires_at', '>', now - EXPIRY_RECORD_WINDOW_MS).execute();
  for (const u of expired) {
    const recorded = await store.db.selectFrom('change_log').select('id').where('entity_kind', '=', 'user').where('entity_name', '=', u.name).where('action', '=', 'expire').where('at', '>=', u.expires_at!).executeTakeFirst();
    if (recorded !== undefined) continue;
    const groups = (await store.db.selectFrom('user_groups').select('group_name').where('user_name', '=', u.name).orderBy('position').execute()).map((g) => g.group_name);
    await recordChange(store.db, { actor: 'system:lifecycle', action: 'expire', entityKind: 'user', entityName: u.name, after: { expiresAt: new Date(u.expires_at!).toISOString(), groups } }, now);
    expiredNames.push(u.name);
  }
  const due = await store.db.selectFrom('policies').select(['owner_kind', 'owner_name', 'reuse_exception_reason', 'reuse_exception_expires_at']).where('reuse_exception_expires_at', '<=', now).execute();
  for (const row of due) {
    await store.db.transaction().execute(async (trx) => {
      await trx.updateTable('policies').set({ reuse_exception_reason: null, reuse_exception_expires_at: null }).where('owner_kind', '=', row.owner_kind).where('owner_name', '=', row.owner_name).execute();
      await recordChange(trx, { actor: 'system:lifecycle', action: 'reuse_exception_lapsed', entityKind: row.owner_kind, entityName: row.owner_name, before: { reuseException: { reason: row.reuse_exception_reason, expiresAt: new Date(row.reuse_exception_expires_at!).toISOString() } }, after: {} }, now);
    });
    lapsed.push(`${row.owner_kind}:${row.owner_name}`);
  }
  return { disabled, lapsed, expired: expiredNames };
}

export { countUsage };
