import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { CLUSTER_CHANNEL, type ClusterSignal } from '../store/cluster-repo.js';

const SIGNALS: readonly ClusterSignal[] = ['bans', 'certificate', 'changes'];
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

/**
 * Listens for the other nodes' wake-up signals on a PostgreSQL store (LISTEN on one dedicated connection), so a ban
 * or a certificate stored by one node reaches the others in milliseconds instead of at their next poll. Polling
 * stays as the safety net: after the connection is lost and regained, every signal is raised once, since some may
 * have been missed meanwhile.
 */
export class ClusterBus extends EventEmitter<{ signal: [ClusterSignal] }> {
  readonly #url: string;
  readonly #log: Logger;
  #client: import('pg').Client | null = null;
  #closed = false;
  #retryMs = RECONNECT_MIN_MS;
  #timer: NodeJS.Timeout | null = null;
  /** Settles once the first LISTEN is in place (or failed; then it retries in the background). */
  readonly ready: Promise<void>;

  constructor(url: string, log: Logger) {
    super();
    this.#url = url;
    this.#log = log.child({ component: 'cluster_bus' });
    this.ready = this.#connect(false);
  }

  async #connect(again: boolean): Promise<void> {
    if (this.#closed) return;
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: this.#url });
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, null));
    client.on('notification', (msg) => {
      const signal = msg.payload as ClusterSignal | undefined;
      if (signal !== undefined && SIGNALS.includes(signal)) this.emit('signal', signal);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CLUSTER_CHANNEL}`);
    } catch (err) {
      this.#lost(client, err);
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#retryMs = RECONNECT_MIN_MS;
    if (again) {
      this.#log.info({ event: 'cluster_bus_reconnected' }, 'cluster signals listening again');
      for (const s of SIGNALS) this.emit('signal', s);
    }
  }

  #lost(client: import('pg').Client, err: unknown): void {
    if (this.#closed || (this.#client !== null && this.#client !== client)) return;
    this.#client = null;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.#timer !== null) return;
    this.#log.warn({ event: 'cluster_bus_lost', err, retryMs: this.#retryMs }, 'cluster signals connection lost; polling meanwhile');
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#connect(true);
    }, this.#retryMs).unref();
    this.#retryMs = Math.min(this.#retryMs * 2, RECONNECT_MAX_MS);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const client = this.#client;
    this.#client = null;
    if (client !== null) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
