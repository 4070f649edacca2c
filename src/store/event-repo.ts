import { sql, type Kysely, type Selectable } from 'kysely';
import type { ActionSpec, EventHooks, EventPayload, EventResult, RuleEvent, RuleSpec } from './event-model.js';
import { emptyEventHooks } from './event-model.js';
import type { Database, Engine, EventActionsTable, EventDeliveriesTable, EventRulesTable } from './schema.js';

// Event hooks in the store: the rules and actions (read by every node, written by `ftpsd apply` and the admin API),
// and the durable delivery queue. A delivery is claimed with a lease by one node process at a time; a lease that
// runs out (a crashed node) makes it free to take again, so every event reaches each of its actions at least once.
//
// For an admin surface: listEventRules / putEventRule / deleteEventRule, listEventActions / putEventAction /
// deleteEventAction (show actions with actionWithoutSecrets), listDeliveries({ state: 'failed' }), retryDeliveries,
// getEventPayload, countDeliveries. Validate input with partners/event-hooks-file.ts (the partners file's schema), and
// write a change-log record (entityKind 'event_rule' or 'event_action') in the same transaction: running servers
// re-read the rules when they see it, and it is audited.

type Db = Kysely<Database>;

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface DeliveryRecord {
  id: number;
  eventId: string;
  eventType: string;
  eventAt: number;
  action: string;
  rule: string;
  state: DeliveryState;
  attempts: number;
  nextAt: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

export interface ClaimedDelivery extends DeliveryRecord {
  payload: EventPayload;
}

// ---- rules and actions -------------------------------------------------------------------------------------------

export async function loadEventHooks(db: Db): Promise<EventHooks> {
  const hooks = emptyEventHooks();
  const [actions, rules] = await Promise.all([db.selectFrom('event_actions').selectAll().orderBy('name').execute(), db.selectFrom('event_rules').selectAll().orderBy('name').execute()]);
  for (const a of actions) hooks.actions[a.name] = actionFromRow(a);
  for (const r of rules) hooks.rules[r.name] = ruleFromRow(r);
  return hooks;
}

export async function listEventRules(db: Db): Promise<RuleSpec[]> {
  return Object.values((await loadEventHooks(db)).rules);
}

export async function listEventActions(db: Db): Promise<ActionSpec[]> {
  return Object.values((await loadEventHooks(db)).actions);
}

export async function putEventAction(db: Db, a: ActionSpec, now: number): Promise<void> {
  const config = JSON.stringify(a.kind === 'webhook' ? a.webhook : a.command);
  const row = { kind: a.kind, config, description: a.description, updated_at: now };
  await db.insertInto('event_actions').values({ name: a.name, ...row, created_at: now }).onConflict((oc) => oc.column('name').doUpdateSet(row)).execute();
}

export async function deleteEventAction(db: Db, name: string): Promise<boolean> {
  const r = await db.deleteFrom('event_actions').where('name', '=', name).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function putEventRule(db: Db, r: RuleSpec, now: number): Promise<void> {
  const row = {
    events: r.events.join(','),
    filter: JSON.stringify({ users: r.users, groups: r.groups, paths: r.paths, minSize: r.minSize, maxSize: r.maxSize, results: r.results }),
    actions: r.actions.join(','),
    enabled: r.enabled ? 1 : 0,
    description: r.description,
    updated_at: now,
  };
  await db.insertInto('event_rules').values({ name: r.name, ...row, created_at: now }).onConflict((oc) => oc.column('name').doUpdateSet(row)).execute();
}

export async function deleteEventRule(db: Db, name: string): Promise<boolean> {
  const r = await db.deleteFrom('event_rules').where('name', '=', name).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

function actionFromRow(r: Selectable<EventActionsTable>): ActionSpec {
  const config = JSON.parse(r.config) as Record<string, unknown>;
  if (r.kind === 'command') return { name: r.name, description: r.description, kind: 'command', command: config as never };
  return { name: r.name, description: r.description, kind: 'webhook', webhook: config as never };
}

function ruleFromRow(r: Selectable<EventRulesTable>): RuleSpec {
  const f = JSON.parse(r.filter) as Partial<Pick<RuleSpec, 'users' | 'groups' | 'paths' | 'minSize' | 'maxSize' | 'results'>>;
  return {
    name: r.name,
    description: r.description,
    enabled: r.enabled !== 0,
    events: splitList(r.events) as RuleEvent[],
    users: f.users ?? [],
    groups: f.groups ?? [],
    paths: f.paths ?? [],
    minSize: f.minSize ?? null,
    maxSize: f.maxSize ?? null,
    results: (f.results ?? []) as EventResult[],
    actions: splitList(r.actions),
  };
}

function splitList(s: string): string[] {
  return s.split(',').filter((x) => x !== '');
}

// ---- the queue ---------------------------------------------------------------------------------------------------

export interface Route {
  action: string;
  rule: string;
}

/**
 * Writes an event and one pending delivery per action. An event id seen before (several nodes publishing the same ban
 * or store change under one deterministic id) adds nothing: returns 0. Run it inside the caller's transaction when the
 * event belongs with other writes (an upload's quota count).
 */
export async function enqueueEvent(db: Db, payload: EventPayload, routes: readonly Route[], now: number): Promise<number> {
  const at = Date.parse(payload.time);
  const inserted = await db
    .insertInto('events')
    .values({ id: payload.id, type: payload.event, at: Number.isFinite(at) ? at : now, node: payload.node, payload: JSON.stringify(payload) })
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return 0;
  const seen = new Set<string>();
  const rows = [];
  for (const r of routes) {
    if (seen.has(r.action)) continue;
    seen.add(r.action);
    rows.push({ event_id: payload.id, action: r.action, rule: r.rule, state: 'pending', attempts: 0, next_at: now, created_at: now, updated_at: now });
  }
  if (rows.length > 0) await db.insertInto('event_deliveries').values(rows).execute();
  return rows.length;
}

/**
 * Takes up to `limit` due deliveries for `owner` until now + leaseMs, in one statement: a delivery is due when
 * pending, past its backoff, and not leased (or its lease ran out). On PostgreSQL the rows are picked with FOR UPDATE
 * SKIP LOCKED, so nodes claiming at the same moment take different rows instead of waiting for each other; on SQLite
 * the statement runs under the database's single writer lock.
 */
export async function claimDeliveries(db: Db, engine: Engine, opts: { owner: string; now: number; leaseMs: number; limit: number }): Promise<ClaimedDelivery[]> {
  const { owner, now, leaseMs, limit } = opts;
  let due = db
    .selectFrom('event_deliveries')
    .select('id')
    .where('state', '=', 'pending')
    .where('next_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .orderBy('next_at')
    .orderBy('id')
    .limit(limit);
  if (engine === 'postgres') due = due.forUpdate().skipLocked();
  const claimed = await db
    .updateTable('event_deliveries')
    .set({ lease_owner: owner, lease_until: now + leaseMs, updated_at: now })
    .where('id', 'in', due)
    .returningAll()
    .execute();
  if (claimed.length === 0) return [];
  const events = await db.selectFrom('events').selectAll().where('id', 'in', [...new Set(claimed.map((c) => c.event_id))]).execute();
  const byId = new Map(events.map((e) => [e.id, e]));
  const out: ClaimedDelivery[] = [];
  for (const c of claimed.sort((a, b) => a.next_at - b.next_at || a.id - b.id)) {
    const e = byId.get(c.event_id);
    if (e === undefined) continue; // pruned meanwhile
    out.push({ ...deliveryFromRow(c, e.type, e.at), payload: JSON.parse(e.payload) as EventPayload });
  }
  return out;
}

/** Marks a delivery done; only while `owner` still holds it (a lease taken over by another node is theirs now). */
export async function completeDelivery(db: Db, id: number, owner: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('event_deliveries')
    .set((eb) => ({ state: 'delivered', attempts: eb('attempts', '+', 1), delivered_at: now, lease_owner: null, lease_until: null, last_error: null, updated_at: now }))
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Records a failed attempt: pending again from `retryAt`, or a dead letter when retryAt is null. */
export async function failDelivery(db: Db, id: number, owner: string, opts: { now: number; error: string; retryAt: number | null }): Promise<boolean> {
  const r = await db
    .updateTable('event_deliveries')
    .set((eb) => ({
      state: opts.retryAt === null ? 'failed' : 'pending',
      attempts: eb('attempts', '+', 1),
      next_at: opts.retryAt ?? opts.now,
      lease_owner: null,
      lease_until: null,
      last_error: opts.error.slice(0, 1000),
      updated_at: opts.now,
    }))
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Gives back what `owner` claimed but did not start (a node stopping), so another node need not wait for the lease. */
export async function releaseLeases(db: Db, owner: string, ids?: readonly number[]): Promise<void> {
  let q = db.updateTable('event_deliveries').set({ lease_owner: null, lease_until: null }).where('lease_owner', '=', owner).where('state', '=', 'pending');
  if (ids !== undefined) {
    if (ids.length === 0) return;
    q = q.where('id', 'in', ids);
  }
  await q.execute();
}

export interface DeliveryQuery {
  state?: DeliveryState;
  eventId?: string;
  /** Newest first; at most this many (default 100). */
  limit?: number;
  /** Only ids below this one (paging backwards). */
  beforeId?: number;
}

export async function listDeliveries(db: Db, q: DeliveryQuery = {}): Promise<DeliveryRecord[]> {
  let query = db
    .selectFrom('event_deliveries as d')
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .selectAll('d')
    .select(['e.type as event_type', 'e.at as event_at'])
    .orderBy('d.id', 'desc')
    .limit(q.limit ?? 100);
  if (q.state !== undefined) query = query.where('d.state', '=', q.state);
  if (q.eventId !== undefined) query = query.where('d.event_id', '=', q.eventId);
  if (q.beforeId !== undefined) query = query.where('d.id', '<', q.beforeId);
  const rows = await query.execute();
  return rows.map((r) => deliveryFromRow(r, r.event_type, r.event_at));
}

export async function getEventPayload(db: Db, eventId: string): Promise<EventPayload | null> {
  const row = await db.selectFrom('events').select('payload').where('id', '=', eventId).executeTakeFirst();
  return row === undefined ? null : (JSON.parse(row.payload) as EventPayload);
}

/**
 * Sends failed (dead-letter) deliveries again from now, with a fresh attempt count: `target` is a delivery id, or an
 * event id (all of its failed deliveries). Returns how many were queued again.
 */
export async function retryDeliveries(db: Db, target: number | string, now: number): Promise<number> {
  let q = db
    .updateTable('event_deliveries')
    .set({ state: 'pending', attempts: 0, next_at: now, lease_owner: null, lease_until: null, updated_at: now })
    .where('state', '=', 'failed');
  q = typeof target === 'number' ? q.where('id', '=', target) : q.where('event_id', '=', target);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function countDeliveries(db: Db): Promise<Record<DeliveryState, number>> {
  const rows = await db.selectFrom('event_deliveries').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
  const out: Record<DeliveryState, number> = { pending: 0, delivered: 0, failed: 0 };
  for (const r of rows) if (r.state in out) out[r.state as DeliveryState] = Number(r.n);
  return out;
}

/** Drops deliveries delivered before `before`, and events left with no delivery. */
export async function pruneDelivered(db: Db, before: number): Promise<number> {
  const r = await db.deleteFrom('event_deliveries').where('state', '=', 'delivered').where('delivered_at', '<', before).executeTakeFirst();
  await db
    .deleteFrom('events')
    .where('at', '<', before)
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('event_deliveries').select(sql.lit(1).as('one')).whereRef('event_deliveries.event_id', '=', 'events.id'))))
    .execute();
  return Number(r.numDeletedRows);
}

function deliveryFromRow(r: Selectable<EventDeliveriesTable>, eventType: string, eventAt: number): DeliveryRecord {
  return {
    id: Number(r.id),
    eventId: r.event_id,
    eventType,
    eventAt,
    action: r.action,
    rule: r.rule,
    state: r.state as DeliveryState,
    attempts: r.attempts,
    nextAt: r.next_at,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    lastError: r.last_error,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
  };
}
