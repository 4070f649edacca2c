import type { Logger } from 'pino';
import type { Store } from '../store/open-store.js';
import { claimClusterSession, heartbeatClusterSessions, releaseClusterSession, resetClusterSessions } from '../store/cluster-repo.js';

export interface ClusterSessionsOptions {
  store: Store;
  nodeId: string;
  heartbeatIntervalMs: number;
  sessionExpiryMs: number;
  log: Logger;
}

/**
 * This node's logged-in sessions in the shared store, so a user's session cap holds over every node. Each node
 * refreshes a heartbeat on its rows; the rows of a node that died (kill -9, power cut) stop counting after
 * cluster.sessionExpiryMs, and are deleted when it starts again.
 */
export class ClusterSessions {
  readonly #o: ClusterSessionsOptions;
  /** Session ids whose row this node wrote and has not deleted. */
  readonly #held = new Set<string>();
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: ClusterSessionsOptions) {
    this.#o = opts;
  }

  async start(): Promise<void> {
    await resetClusterSessions(this.#o.store.db, this.#o.nodeId, Date.now() - this.#o.sessionExpiryMs);
    this.#timer = setInterval(() => void this.#beat(), this.#o.heartbeatIntervalMs);
    this.#timer.unref();
  }

  /** Counts one login against `max` sessions of `user` over all nodes; false when the user already holds `max`. */
  async claim(sid: string, user: string, ip: string, max: number): Promise<boolean> {
    const now = Date.now();
    const ok = await claimClusterSession(this.#o.store.db, this.#o.store.engine, { nodeId: this.#o.nodeId, sid, user, ip, max, aliveAfter: now - this.#o.sessionExpiryMs, now });
    if (ok) this.#held.add(sid);
    return ok;
  }

  /** The session ended (or logged out): its row goes. */
  release(sid: string): void {
    if (!this.#held.delete(sid)) return;
    releaseClusterSession(this.#o.store.db, this.#o.nodeId, sid).catch((err: unknown) => this.#o.log.warn({ err, sid }, 'cluster session not released; it expires by itself'));
  }

  async #beat(): Promise<void> {
    if (this.#held.size === 0) return;
    try {
      await heartbeatClusterSessions(this.#o.store.db, this.#o.nodeId, Date.now());
    } catch (err) {
      this.#o.log.warn({ err, event: 'cluster_heartbeat_failed' }, 'cluster session heartbeat failed');
    }
  }

  /** Stops the heartbeat and deletes the rows still held (a graceful stop). */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#held.size === 0) return;
    this.#held.clear();
    await resetClusterSessions(this.#o.store.db, this.#o.nodeId, 0).catch(() => undefined);
  }
}
