import type { Kysely } from 'kysely';
import { recordChange } from '../store/change-log.js';
import { actionWithoutSecrets, emptyEventHooks, type ActionSpec, type EventHooks, type RuleSpec } from '../store/event-model.js';
import { deleteEventAction, deleteEventRule, loadEventHooks, putEventAction, putEventRule } from '../store/event-repo.js';
import { withoutSecrets, type FolderSpec, type GroupSpec, type PartnerSet, type UserSpec } from '../store/partner-model.js';
import { deleteFolder, deleteGroup, deleteUser, loadPartners, putFolder, putGroup, putUser } from '../store/partner-repo.js';
import type { Database } from '../store/schema.js';
import type { Store } from '../store/open-store.js';
import type { PartnerFile } from './partner-file.js';

// Makes the store match a partner set: what differs is created, updated or deleted, all in one transaction with one
// change-log record each (before and after, without secrets). The plan is computed first, so a dry run prints the
// same changes an apply makes.

export type EntityKind = 'folder' | 'group' | 'user' | 'event_action' | 'event_rule';
type Entity = FolderSpec | GroupSpec | UserSpec | ActionSpec | RuleSpec;

export interface PlannedChange {
  action: 'create' | 'update' | 'delete';
  /** What the change log calls it when more specific than the action ("disable", "passwd"). */
  label?: string;
  kind: EntityKind;
  name: string;
  /** Top-level keys that differ (for an update). */
  keys: string[];
  before?: Entity;
  after?: Entity;
}

/**
 * Changes that turn `current` into `desired`. Users listed in keepPassword keep their current hash; event rules and
 * actions are planned only when the file has an `events:` section.
 */
export function planChanges(current: PartnerSet, file: PartnerFile, currentHooks: EventHooks = emptyEventHooks()): PlannedChange[] {
  const desired = file.set;
  const users: Record<string, UserSpec> = {};
  for (const [name, u] of Object.entries(desired.users)) {
    users[name] = file.keepPassword.has(name) ? { ...u, passwordHash: current.users[name]?.passwordHash ?? null } : u;
  }
  const hooks = file.events === undefined ? [] : [...diff('event_action', currentHooks.actions, file.events.actions), ...diff('event_rule', currentHooks.rules, file.events.rules)];
  return [...diff('folder', current.folders, desired.folders), ...diff('group', current.groups, desired.groups), ...diff('user', current.users, users), ...hooks];
}

function diff<T extends Entity>(kind: EntityKind, current: Record<string, T>, desired: Record<string, T>): PlannedChange[] {
  const out: PlannedChange[] = [];
  for (const [name, after] of Object.entries(desired)) {
    const before = current[name];
    if (before === undefined) out.push({ action: 'create', kind, name, keys: [], after });
    else {
      const keys = changedKeys(before, after);
      if (keys.length > 0) out.push({ action: 'update', kind, name, keys, before, after });
    }
  }
  for (const [name, before] of Object.entries(current)) if (desired[name] === undefined) out.push({ action: 'delete', kind, name, keys: [], before });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function changedKeys(a: Entity, b: Entity): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => canonical((a as unknown as Record<string, unknown>)[k]) !== canonical((b as unknown as Record<string, unknown>)[k])).sort();
}

/** JSON with object keys sorted, so equal values compare equal whatever order they were written in. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : value,
  );
}

/**
 * Plans against the store as it is inside the transaction and, unless dryRun, applies the plan there: folders and
 * groups before the users that use them, deletions of users before the groups and folders they used.
 */
export async function applyPartnerFile(store: Store, file: PartnerFile, opts: { actor: string; dryRun: boolean; now?: number; ip?: string }): Promise<PlannedChange[]> {
  const now = opts.now ?? Date.now();
  if (opts.dryRun) return planChanges(await loadPartners(store.db), file, await loadEventHooks(store.db));
  return store.db.transaction().execute(async (trx) => {
    const plan = planChanges(await loadPartners(trx), file, await loadEventHooks(trx));
    await execute(trx, plan, opts.actor, now, opts.ip);
    return plan;
  });
}

const ORDER: Array<[PlannedChange['action'][], EntityKind]> = [
  [['create', 'update'], 'folder'],
  [['create', 'update'], 'group'],
  [['create', 'update'], 'user'],
  [['create', 'update'], 'event_action'],
  [['create', 'update'], 'event_rule'],
  [['delete'], 'event_rule'],
  [['delete'], 'event_action'],
  [['delete'], 'user'],
  [['delete'], 'group'],
  [['delete'], 'folder'],
];

/** `ip`: the address the change came from (admin API), recorded with each change. */
export async function execute(db: Kysely<Database>, plan: readonly PlannedChange[], actor: string, now: number, ip?: string): Promise<void> {
  for (const [actions, kind] of ORDER) {
    for (const c of plan.filter((p) => p.kind === kind && actions.includes(p.action))) {
      if (kind === 'event_action' || kind === 'event_rule') await executeHook(db, c, now);
      else if (c.action === 'delete') await (kind === 'user' ? deleteUser(db, c.name) : kind === 'group' ? deleteGroup(db, c.name) : deleteFolder(db, c.name));
      else if (kind === 'user') await putUser(db, c.after as UserSpec, now);
      else if (kind === 'group') await putGroup(db, c.after as GroupSpec, now);
      else await putFolder(db, c.after as FolderSpec, now);
      await recordChange(db, { actor, action: c.label ?? c.action, entityKind: kind, entityName: c.name, before: c.before && secretFree(c.before), after: c.after && secretFree(c.after), ...(ip === undefined ? {} : { ip }) }, now);
    }
  }
}

async function executeHook(db: Kysely<Database>, c: PlannedChange, now: number): Promise<void> {
  if (c.kind === 'event_action') await (c.action === 'delete' ? deleteEventAction(db, c.name) : putEventAction(db, c.after as ActionSpec, now));
  else await (c.action === 'delete' ? deleteEventRule(db, c.name) : putEventRule(db, c.after as RuleSpec, now));
}

function secretFree(e: Entity): Record<string, unknown> {
  if ('kind' in e && (e.kind === 'webhook' || e.kind === 'command')) return actionWithoutSecrets(e);
  if ('events' in e) return { ...e };
  return withoutSecrets(e as FolderSpec | GroupSpec | UserSpec);
}

/** One line per change, as `ftpsd apply` prints it: "+ user acme", "~ group partners (policy, mounts)", "- folder old". */
export function describeChange(c: PlannedChange): string {
  const sign = c.action === 'create' ? '+' : c.action === 'delete' ? '-' : '~';
  const keys = c.action === 'update' ? ` (${c.keys.map((k) => (k === 'passwordHash' ? 'password' : k)).join(', ')})` : '';
  return `${sign} ${c.kind} ${c.name}${keys}`;
}
