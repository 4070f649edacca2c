import type { Logger } from 'pino';

export type RefusalLevel = 'debug' | 'info' | 'warn';

/**
 * A session's budget of log lines for refused commands. A client can pipeline thousands of commands that each fail
 * (5,000 RNFR of a missing file were 1.6 MB of log), so a session logs its first `perSession` refusals in full and then
 * one line every `summaryIntervalMs` counting the ones it left out, and a last count when it closes.
 */
export class RefusalLog {
  readonly #log: Logger;
  readonly #perSession: number;
  readonly #summaryIntervalMs: number;
  readonly #now: () => number;
  #logged = 0;
  #notLogged = 0;
  #windowStart = 0;

  constructor(log: Logger, opts: { perSession: number; summaryIntervalMs: number; now?: () => number }) {
    this.#log = log;
    this.#perSession = opts.perSession;
    this.#summaryIntervalMs = opts.summaryIntervalMs;
    this.#now = opts.now ?? Date.now;
  }

  write(level: RefusalLevel, fields: Record<string, unknown>, msg: string): void {
    // Lines the level filters out cost nothing and do not use up the budget.
    if (!this.#log.isLevelEnabled(level)) return;
    if (this.#logged < this.#perSession) {
      this.#logged++;
      this.#log[level](fields, msg);
      if (this.#logged === this.#perSession) this.#windowStart = this.#now();
      return;
    }
    this.#notLogged++;
    if (this.#now() - this.#windowStart >= this.#summaryIntervalMs) this.flush();
  }

  /** Writes the count of refusals left out since the last summary, if any (also called when the session closes). */
  flush(): void {
    if (this.#notLogged === 0) return;
    this.#log.info({ event: 'refusals_not_logged', count: this.#notLogged, sinceMs: this.#now() - this.#windowStart }, 'refused commands not logged');
    this.#notLogged = 0;
    this.#windowStart = this.#now();
  }
}
