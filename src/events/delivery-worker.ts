import type { Logger } from 'pino';
import type { ActionSpec, EventPayload } from '../store/event-model.js';
import { claimDeliveries, completeDelivery, failDelivery, pruneDelivered, releaseLeases, type ClaimedDelivery } from '../store/event-repo.js';
import type { Store } from '../store/open-store.js';
import type { EventMetrics } from './events-metrics.js';
import type { EventSettings } from './run-action.js';

// Sends what the store holds: claims due deliveries with a lease (so each goes to one node at a time, and a dead
// node's claims are taken over once their lease ran out), runs each through its action, and records the outcome:
// delivered, pending again after a backoff, or a dead letter after events.maxAttempts. Woken at once when this node
// queues something, and every events.pollIntervalMs for retries and for events other nodes queued.

export interface DeliveryWorkerOptions {
  store: Store;
  /** Unique per process: the lease owner. */
  owner: string;
  settings(): EventSettings;
  action(name: string): ActionSpec | undefined;
  deliver(action: ActionSpec, payload: EventPayload, signal: AbortSignal): Promise<void>;
  metrics: EventMetrics;
  log: Logger;
}

const PRUNE_EVERY_MS = 600_000;
/** On close, running deliveries get this long to finish before they are abandoned (and redelivered later). */
const CLOSE_GRACE_MS = 2_000;

export class DeliveryWorker {
  readonly #o: DeliveryWorkerOptions;
  readonly #running = new Map<number, { done: Promise<void>; abort: AbortController }>();
  #claiming: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #lastPrune = 0;

  constructor(opts: DeliveryWorkerOptions) {
    this.#o = opts;
  }

  get busy(): number {
    return this.#running.size;
  }

  /** Claims what is due, up to the free slots; calls during a claim make it run once more afterwards. */
  tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#claiming !== null) {
      this.#again = true;
      return this.#claiming;
    }
    this.#claiming = this.#claim().finally(() => {
      this.#claiming = null;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.tick();
      }
    });
    return this.#claiming;
  }

  async #claim(): Promise<void> {
    const s = this.#o.settings();
    const free = s.concurrency - this.#running.size;
    const now = Date.now();
    try {
      if (now - this.#lastPrune > PRUNE_EVERY_MS) {
        this.#lastPrune = now;
        const n = await pruneDelivered(this.#o.store.db, now - s.keepDeliveredMs);
        if (n > 0) this.#o.log.info({ event: 'events_pruned', deliveries: n }, 'delivered events pruned');
      }
      if (free <= 0) return;
      const claimed = await claimDeliveries(this.#o.store.db, this.#o.store.engine, { owner: this.#o.owner, now, leaseMs: s.leaseMs, limit: free });
      for (const d of claimed) this.#start(d);
    } catch (err) {
      this.#o.log.error({ err, event: 'events_claim_failed' }, 'event deliveries could not be claimed');
    }
  }

  #start(d: ClaimedDelivery): void {
    const abort = new AbortController();
    const done = this.#attempt(d, abort.signal).finally(() => {
      this.#running.delete(d.id);
      // A slot is free: more may be waiting.
      void this.tick();
    });
    this.#running.set(d.id, { done, abort });
  }

  async #attempt(d: ClaimedDelivery, signal: AbortSignal): Promise<void> {
    const { store, owner, log, metrics } = this.#o;
    const s = this.#o.settings();
    const action = this.#o.action(d.action);
    const fields = { eventId: d.eventId, delivery: d.id, action: d.action, type: d.eventType, attempt: d.attempts + 1 };
    let error: string | null = null;
    if (action === undefined) error = `no action named "${d.action}"`;
    else {
      try {
        await this.#o.deliver(action, d.payload, signal);
      } catch (err) {
        error = (err as Error).message;
      }
    }
    if (signal.aborted) return; // closing: the lease is given back, the delivery is retried later
    const now = Date.now();
    try {
      if (error === null) {
        await completeDelivery(store.db, d.id, owner, now);
        metrics.delivered(now - d.eventAt);
        log.info({ event: 'event_delivered', ...fields, ms: now - d.eventAt }, 'event delivered');
        return;
      }
      metrics.attemptFailed();
      const attempts = d.attempts + 1;
      // An unknown action cannot get better by waiting: a dead letter at once, to retry once the action exists.
      const dead = action === undefined || attempts >= s.maxAttempts;
      const retryAt = dead ? null : now + backoffMs(attempts, s.retryMinMs, s.retryMaxMs);
      await failDelivery(store.db, d.id, owner, { now, error, retryAt });
      if (dead) {
        metrics.deadLettered();
        log.error({ event: 'event_dead_letter', ...fields, error }, 'event delivery failed for good');
      } else log.warn({ event: 'event_delivery_failed', ...fields, error, retryAt: new Date(retryAt!).toISOString() }, 'event delivery failed; will retry');
    } catch (err) {
      // The lease runs out and the delivery is tried again: at least once, never lost.
      log.error({ err, event: 'events_record_failed', ...fields }, 'event delivery outcome not recorded');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#claiming;
    const running = [...this.#running.entries()];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map(([, r]) => r.done)), new Promise((r) => (timer = setTimeout(r, CLOSE_GRACE_MS).unref()))]);
    clearTimeout(timer);
    const left = [...this.#running.entries()];
    for (const [, r] of left) r.abort.abort();
    await releaseLeases(this.#o.store.db, this.#o.owner, left.map(([id]) => id)).catch((err: unknown) => this.#o.log.warn({ err }, 'event leases not released'));
    await Promise.all(left.map(([, r]) => r.done));
  }
}

/** retryMinMs, doubled per further attempt, at most retryMaxMs, with ±20 % jitter so retries of many events spread. */
export function backoffMs(attempts: number, minMs: number, maxMs: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
