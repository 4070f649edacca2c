import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { CommitJournal, StagedUpload, UploadResult } from '../storage/backend.js';
import type { LoggedChange } from '../store/change-log.js';
import { CHECK_EVENT, emptyEventHooks, type EventHooks, type EventPayload } from '../store/event-model.js';
import { countDeliveries, enqueueEvent, loadEventHooks } from '../store/event-repo.js';
import type { Store } from '../store/open-store.js';
import type { Database } from '../store/schema.js';
import type { Kysely } from 'kysely';
import { eventsFromChanges } from './change-events.js';
import { DeliveryWorker } from './delivery-worker.js';
import type { EventMetrics } from './events-metrics.js';
import { buildPayload, type EventFacts } from './payload.js';
import { runUploadCheck } from './precommit-check.js';
import { mayMatch, routesFor } from './rules.js';
import { runAction, type EventSettings } from './run-action.js';

// The one bus the session, storage, the defender and the certificate manager publish to. Publishing matches the
// event against the rules (kept in memory, re-read from the store every events.pollIntervalMs) and, when any rule
// wants it, writes the event and its deliveries to the store; the delivery worker sends them from there. Nothing
// here holds a reply: `publish` returns at once, and only an upload's own event is awaited (it is in the store before
// the client gets 226). The pre-commit check is the explicit exception.

/** What the rest of the server sees of events. */
export interface EventPublisher {
  /** Queues the event for the rules that want it, in the background. */
  publish(facts: EventFacts): void;
  /** The same, settled once the event is in the store (or known to be wanted by no rule). */
  publishDurable(facts: EventFacts): Promise<void>;
  /**
   * An upload's commit record: `journal` goes into the storage commit (the event is written in the same transaction
   * as the quota count); `settle` writes it on its own when the commit had no such transaction.
   */
  uploadCommit(facts: Omit<EventFacts, 'event'>): UploadCommitRecord;
  /** The pre-commit check for an upload by this user to this path, or undefined when no check rule applies. */
  uploadCheck(facts: Omit<EventFacts, 'event'>): ((staged: StagedUpload) => Promise<void>) | undefined;
}

export interface UploadCommitRecord {
  /** Undefined when no rule wants uploads: the quota count then needs no transaction of its own. */
  journal: CommitJournal | undefined;
  settle(result: UploadResult): Promise<void>;
}

export interface EventBusOptions {
  store: Store;
  node: string;
  settings(): EventSettings;
  /** events.quarantineDir resolved against the server's directory; null when empty. */
  quarantineDir(): string | null;
  log: Logger;
  audit(event: string, fields: Record<string, unknown>): void;
  metrics: EventMetrics;
}

export class EventBus implements EventPublisher {
  readonly #o: EventBusOptions;
  readonly #log: Logger;
  readonly worker: DeliveryWorker;
  readonly owner: string;
  #hooks: EventHooks = emptyEventHooks();
  /** Event names some enabled rule lists. */
  #wanted = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  readonly #writes = new Set<Promise<unknown>>();
  #closed = false;
  readonly #startedAt = Date.now();

  constructor(opts: EventBusOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'events' });
    this.owner = `${opts.node}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.worker = new DeliveryWorker({
      store: opts.store,
      owner: this.owner,
      settings: opts.settings,
      action: (name) => this.#hooks.actions[name],
      deliver: (action, payload, signal) => abortable(runAction(action, payload, opts.settings(), this.#log), signal),
      metrics: opts.metrics,
      log: this.#log,
    });
  }

  get hooks(): EventHooks {
    return this.#hooks;
  }

  async start(): Promise<void> {
    await this.refresh();
    const tick = () => {
      void this.refresh().then(() => this.worker.tick());
    };
    this.#timer = setInterval(tick, this.#o.settings().pollIntervalMs);
    this.#timer.unref();
    void this.worker.tick();
  }

  /** Re-reads the rules and actions (another node, the CLI or the admin API may have changed them). */
  async refresh(): Promise<void> {
    try {
      this.#hooks = await loadEventHooks(this.#o.store.db);
      this.#wanted = new Set(Object.values(this.#hooks.rules).filter((r) => r.enabled).flatMap((r) => r.events));
    } catch (err) {
      this.#log.error({ err, event: 'event_rules_unreadable' }, 'event rules could not be read; keeping the previous ones');
    }
  }

  publish(facts: EventFacts): void {
    const write = this.publishDurable(facts).catch(() => undefined);
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  async publishDurable(facts: EventFacts): Promise<void> {
    // Most servers have few rules and most events match none: no payload is built for those.
    if (this.#closed || !this.#wanted.has(facts.event)) return;
    const payload = buildPayload(facts, this.#o.node);
    try {
      if (await this.#enqueue(this.#o.store.db, payload)) void this.worker.tick();
    } catch (err) {
      this.#log.error({ err, event: 'event_not_queued', eventId: payload.id, type: payload.event }, 'event could not be queued');
      throw err;
    }
  }

  /** Writes the event when a rule wants it; true when deliveries were queued. */
  async #enqueue(db: Kysely<Database>, payload: EventPayload): Promise<boolean> {
    const routes = routesFor(this.#hooks, payload.event, payload);
    if (routes.length === 0) return false;
    const n = await enqueueEvent(db, payload, routes, Date.now());
    if (n === 0) return false;
    this.#o.metrics.queued(n);
    this.#log.debug({ event: 'event_queued', eventId: payload.id, type: payload.event, actions: routes.map((r) => r.action) }, 'event queued');
    return true;
  }

  uploadCommit(facts: Omit<EventFacts, 'event'>): UploadCommitRecord {
    let payload: EventPayload | null = null;
    let queued = false;
    const payloadFor = (r: UploadResult) => (payload ??= buildPayload({ ...facts, event: 'upload', size: r.size, sha256: r.sha256, storagePath: r.storagePath ?? null, result: 'ok', code: 226 }, this.#o.node));
    // Most servers have no rule on uploads: no journal to write along the quota count, no payload built.
    const wanted = () => !this.#closed && this.#wanted.has('upload');
    return {
      journal: wanted()
        ? async (trx, result) => {
            queued = await this.#enqueue(trx as Kysely<Database>, payloadFor(result));
          }
        : undefined,
      settle: async (result) => {
        // Without a journaled transaction (no quota count, or it failed) the event is written now; the same id
        // makes a second write of an event already stored a no-op. A rule added since the upload began counts.
        if (result.journaled !== true && wanted()) queued = await this.#enqueue(this.#o.store.db, payloadFor(result));
        if (queued) void this.worker.tick();
      },
    };
  }

  uploadCheck(facts: Omit<EventFacts, 'event'>): ((staged: StagedUpload) => Promise<void>) | undefined {
    const rules = mayMatch(this.#hooks, CHECK_EVENT, { user: facts.user ?? null, groups: [...(facts.groups ?? [])], path: facts.path ?? null, toPath: null, result: 'ok' });
    if (rules.length === 0) return undefined;
    const hooks = this.#hooks;
    return (staged) =>
      runUploadCheck(
        {
          rules,
          action: (name) => hooks.actions[name],
          facts,
          node: this.#o.node,
          settings: this.#o.settings(),
          quarantineDir: this.#o.quarantineDir(),
          log: this.#log,
          audit: this.#o.audit,
          publish: (f) => this.publish(f),
        },
        staged,
      );
  }

  /** Publishes what the store's change log says happened (user disabled or expired, retention deletions). */
  fromChanges(changes: readonly LoggedChange[]): void {
    // A node reading the change log from its beginning does not announce what happened long before: within
    // keepDeliveredMs an event already sent is recognised by its id; older ones are history.
    const oldest = this.#startedAt - this.#o.settings().keepDeliveredMs;
    for (const facts of eventsFromChanges(changes)) if ((facts.at ?? 0) >= oldest) this.publish(facts);
  }

  /** Pending and dead-letter deliveries in the store (all nodes), for the metrics. */
  waiting(): Promise<{ pending: number; failed: number }> {
    return countDeliveries(this.#o.store.db);
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.all([...this.#writes]);
    this.#closed = true;
    await this.worker.close();
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
