import type { Logger } from 'pino';
import { changesSince, getMeta, latestChangeId, setMeta, type LoggedChange } from '../store/change-log.js';
import type { Store } from '../store/open-store.js';

// The running server's view of changes made elsewhere (the CLI, another node, its own jobs): every store-poll tick
// it writes new change-log records to its audit trail and, when something changed, lets the server re-check the
// users of open sessions. Expiry by time is checked on every tick too.

export interface StoreWatchOptions {
  store: Store;
  /** This node's id (cluster.nodeId): each node keeps its own cursor, so every node audits every change. */
  nodeId: string;
  intervalMs: number;
  log: Logger;
  audit(event: string, fields: Record<string, unknown>): void;
  /** Something in the store changed: refresh caches and re-check sessions. */
  onChange(changes: readonly LoggedChange[]): Promise<void>;
  /** Every tick: time-based checks (expiry, lapsed exceptions) of open sessions. */
  onTick(now: number): void;
}

export class StoreWatch {
  readonly #o: StoreWatchOptions;
  readonly #cursorKey: string;
  #cursor = 0;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(opts: StoreWatchOptions) {
    this.#o = opts;
    this.#cursorKey = `audit_cursor:${opts.nodeId}`;
  }

  async start(): Promise<void> {
    const saved = await getMeta(this.#o.store.db, this.#cursorKey);
    this.#cursor = saved === null ? 0 : Number(saved);
    await this.tick();
    this.#timer = setInterval(() => void this.tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** One round; rounds never overlap. */
  tick(): Promise<void> {
    this.#running ??= this.#round().finally(() => (this.#running = null));
    return this.#running;
  }

  async #round(): Promise<void> {
    const now = Date.now();
    this.#o.onTick(now);
    try {
      if ((await latestChangeId(this.#o.store.db)) <= this.#cursor) return;
      const changes = await changesSince(this.#o.store.db, this.#cursor);
      for (const c of changes) {
        this.#o.audit('store_change', { changeId: c.id, at: new Date(c.at).toISOString(), actor: c.actor, ...(c.ip === undefined ? {} : { ip: c.ip }), action: c.action, kind: c.entityKind, name: c.entityName, before: c.before, after: c.after });
      }
      const last = changes.at(-1);
      if (last !== undefined) {
        this.#cursor = last.id;
        await setMeta(this.#o.store.db, this.#cursorKey, String(this.#cursor));
      }
      await this.#o.onChange(changes);
    } catch (err) {
      this.#o.log.error({ err, event: 'store_poll_failed' }, 'store poll failed');
    }
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
