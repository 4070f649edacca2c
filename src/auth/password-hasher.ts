import argon2 from 'argon2';
import { FtpError } from '../errors.js';
import type { HashPriority } from './login-throttle.js';

/**
 * argon2id hashing with a concurrency cap. argon2 runs on libuv's threadpool, the same four threads file I/O uses;
 * measured on a 2-core machine, 50 concurrent verifies delayed queued file operations by up to 5.4 s. So at most
 * `concurrency` run at once and the rest wait in a bounded queue; past it, logins are refused with 421 rather than
 * stalling transfers. Logins from an address where the user logged in before ('known') wait in a queue of their own
 * that is served first, and `reserved` places of the queue are theirs alone: a storm of wrong passwords from
 * elsewhere can fill the rest, never delay them behind it.
 */

/** OWASP's minimum for argon2id (m=19 MiB, t=2, p=1). */
export const HASH_PARAMS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export class PasswordHasher {
  readonly #concurrency: number;
  readonly #queueMax: number;
  readonly #reserved: number;
  #running = 0;
  readonly #waiting: Record<HashPriority, Array<() => void>> = { known: [], other: [] };
  /** Verified against when the user does not exist, so an unknown user costs the same time as a wrong password. */
  #dummyHash: Promise<string> | null = null;

  constructor(opts: { concurrency: number; queueMax: number; reserved?: number }) {
    this.#concurrency = opts.concurrency;
    this.#queueMax = opts.queueMax;
    this.#reserved = Math.min(opts.reserved ?? 0, opts.queueMax);
  }

  get queued(): number {
    return this.#waiting.known.length + this.#waiting.other.length;
  }

  hash(password: string): Promise<string> {
    return this.#run(() => argon2.hash(password, HASH_PARAMS));
  }

  /** Verifies; a null hash (unknown user) still burns one verification and returns false. */
  async verify(hash: string | null, password: string, priority: HashPriority = 'other'): Promise<boolean> {
    if (hash === null) {
      this.#dummyHash ??= argon2.hash(`unknown-user-${Math.random()}`, HASH_PARAMS);
      const dummy = await this.#dummyHash;
      await this.#run(() => argon2.verify(dummy, password).catch(() => false), priority);
      return false;
    }
    return this.#run(() => argon2.verify(hash, password).catch(() => false), priority);
  }

  /** True when the stored hash was made with weaker parameters than today's, so it is upgraded at the next login. */
  needsRehash(hash: string): boolean {
    try {
      return argon2.needsRehash(hash, HASH_PARAMS);
    } catch {
      return true;
    }
  }

  async #run<T>(work: () => Promise<T>, priority: HashPriority = 'other'): Promise<T> {
    if (this.#running >= this.#concurrency) {
      const room = priority === 'known' ? this.#queueMax : this.#queueMax - this.#reserved;
      if (this.queued >= room) {
        throw new FtpError(421, 'Too many logins in progress, try again later', { reason: 'hash_queue_full' });
      }
      // The finishing job hands its slot over directly, so the cap holds even while the waiter wakes up.
      await new Promise<void>((resolve) => this.#waiting[priority].push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.known.shift() ?? this.#waiting.other.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
