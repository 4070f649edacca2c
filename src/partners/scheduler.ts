import type { Logger } from 'pino';
import type { Store } from '../store/open-store.js';
import { runLifecycle, runRetention } from './housekeeping.js';

/** Runs retention, partial-upload expiry and the lifecycle jobs every housekeeping.intervalMs, one run at a time. */
export class Housekeeping {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #resolve: (p: string) => string;
  readonly #settings: () => { intervalMs: number; partialUploadMaxAgeMs: number };
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(opts: { store: Store; log: Logger; resolve: (p: string) => string; settings: () => { intervalMs: number; partialUploadMaxAgeMs: number } }) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#resolve = opts.resolve;
    this.#settings = opts.settings;
  }

  start(): void {
    // A timeout re-armed after each run (not an interval), so a changed interval applies from the next run on.
    const arm = () => {
      this.#timer = setTimeout(() => void this.run().finally(arm), this.#settings().intervalMs);
      this.#timer.unref();
    };
    arm();
  }

  run(): Promise<void> {
    this.#running ??= this.#run().finally(() => (this.#running = null));
    return this.#running;
  }

  async #run(): Promise<void> {
    try {
      const retention = await runRetention(this.#store, { resolve: this.#resolve, partialMaxAgeMs: this.#settings().partialUploadMaxAgeMs, dryRun: false });
      const lifecycle = await runLifecycle(this.#store);
      const n = retention.deleted.length + retention.partialsRemoved.length + lifecycle.disabled.length + lifecycle.lapsed.length;
      if (n > 0) this.#log.info({ event: 'housekeeping', deleted: retention.deleted.length, partialsRemoved: retention.partialsRemoved.length, disabled: lifecycle.disabled, lapsed: lifecycle.lapsed }, 'housekeeping done');
    } catch (err) {
      this.#log.error({ err, event: 'housekeeping_failed' }, 'housekeeping failed');
    }
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
