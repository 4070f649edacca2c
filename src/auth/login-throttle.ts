import { FtpError } from '../errors.js';

/** Which queue a password check waits in: logins from an address where that user logged in before go first. */
export type HashPriority = 'known' | 'other';

export interface LoginAdmission {
  readonly priority: HashPriority;
  /** Ends this attempt's claim on its account's throttled slot. Idempotent. */
  release(): void;
}

export interface LoginThrottleOptions {
  /** limits.accountFailuresBeforeThrottle: failures on one user name within the window that throttle the name. */
  failuresBeforeThrottle: number;
  /** limits.accountFailureWindowMs */
  windowMs: number;
  /** How many user names and (user, address) successes are remembered; the least recently used are forgotten. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * Per-account login throttling, next to the defender's per-address scores. A storm spread over many addresses stays
 * under every address's ban threshold but fails again and again on the same few user names; once a name has failed
 * `failuresBeforeThrottle` times within the window, only one password check at a time runs for it from addresses
 * where it never logged in, so the storm cannot spend the argon2 queue on it. Addresses where the user logged in
 * before are exempt and their checks go first: the partner who uses the account keeps logging in.
 */
export class LoginThrottle {
  readonly #failuresBeforeThrottle: number;
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** user name -> times of its recent failures (at most failuresBeforeThrottle kept). Map order: least recent first. */
  readonly #failures = new Map<string, number[]>();
  /** `${user}\n${address}` pairs that logged in successfully. Map order: least recent first. */
  readonly #known = new Map<string, true>();
  /** Throttled checks running or queued per user name (0 or 1). */
  readonly #throttled = new Set<string>();

  constructor(opts: LoginThrottleOptions) {
    this.#failuresBeforeThrottle = opts.failuresBeforeThrottle;
    this.#windowMs = opts.windowMs;
    this.#maxEntries = opts.maxEntries ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Before a password check; throws FtpError 421 when the name is throttled and its one slot is taken. */
  admit(user: string, address: string): LoginAdmission {
    if (this.#known.has(key(user, address))) return { priority: 'known', release: () => undefined };
    if (!this.isThrottled(user)) return { priority: 'other', release: () => undefined };
    if (this.#throttled.has(user)) {
      throw new FtpError(421, 'Too many failed logins for this user, try again later', { reason: 'account_throttled' });
    }
    this.#throttled.add(user);
    let released = false;
    return {
      priority: 'other',
      release: () => {
        if (released) return;
        released = true;
        this.#throttled.delete(user);
      },
    };
  }

  isThrottled(user: string): boolean {
    const since = this.#now() - this.#windowMs;
    const recent = (this.#failures.get(user) ?? []).filter((at) => at > since);
    return recent.length >= this.#failuresBeforeThrottle;
  }

  succeeded(user: string, address: string): void {
    const k = key(user, address);
    this.#known.delete(k);
    this.#known.set(k, true);
    evictOver(this.#known, this.#maxEntries);
  }

  failed(user: string): void {
    const now = this.#now();
    const since = now - this.#windowMs;
    const recent = (this.#failures.get(user) ?? []).filter((at) => at > since);
    recent.push(now);
    if (recent.length > this.#failuresBeforeThrottle) recent.shift();
    this.#failures.delete(user);
    this.#failures.set(user, recent);
    evictOver(this.#failures, this.#maxEntries);
  }
}

function key(user: string, address: string): string {
  return `${user}\n${address}`;
}

function evictOver(map: Map<string, unknown>, max: number): void {
  for (const k of map.keys()) {
    if (map.size <= max) return;
    map.delete(k);
  }
}
