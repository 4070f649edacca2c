import type { Logger } from 'pino';
import { effectiveUser } from '../access/effective.js';
import { toLoginUser, type LoginUser } from '../access/login-user.js';
import type { Store } from '../store/open-store.js';
import { loadPartners, loadUserRuntime, rehashPassword, userNames } from '../store/partner-repo.js';
import type { HashPriority } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';

export type LoginRefusal = 'unknown_user' | 'bad_password' | 'disabled' | 'expired' | 'password_expired' | 'tls_version';

export type LoginResult = { ok: true; user: LoginUser } | { ok: false; reason: LoginRefusal };

export interface LoginContext {
  /** Negotiated TLS version of the control connection ("TLSv1.3"), null on a plain connection. */
  tlsVersion: string | null;
}

const DAY_MS = 86_400_000;

/**
 * The users of the running server, read from the store at each login (so a change made by `ftpsd user`, `ftpsd
 * apply` or another node applies to the next login without a reload). What must be known before any login, whether
 * some user needs a client certificate, is refreshed by `reload`.
 */
export class StoreDirectory {
  readonly #store: Store;
  readonly #hasher: PasswordHasher;
  readonly #log: Logger;
  readonly #resolve: (p: string) => string;
  #names: string[] = [];
  #anyClientCert = false;

  constructor(opts: { store: Store; hasher: PasswordHasher; log: Logger; resolveLocation: (p: string) => string }) {
    this.#store = opts.store;
    this.#hasher = opts.hasher;
    this.#log = opts.log;
    this.#resolve = opts.resolveLocation;
  }

  get size(): number {
    return this.#names.length;
  }

  /** Re-reads what is cached; returns the user names added and removed since the last time. */
  async reload(): Promise<{ added: string[]; removed: string[] }> {
    const set = await loadPartners(this.#store.db);
    const names = Object.keys(set.users).sort();
    const added = names.filter((n) => !this.#names.includes(n));
    const removed = this.#names.filter((n) => !names.includes(n));
    this.#names = names;
    this.#anyClientCert = names.some((n) => (effectiveUser(set, n)?.policy.clientCertificates.value ?? []).length > 0);
    return { added, removed };
  }

  /** True when some user maps to client certificates, so TLS handshakes must ask the client for one. */
  anyNeedsClientCert(): boolean {
    return this.#anyClientCert;
  }

  /** The user as a login would see it now, or null when it does not exist. */
  async load(name: string): Promise<LoginUser | null> {
    const eff = effectiveUser(await loadPartners(this.#store.db, { user: name }), name);
    return eff === null ? null : toLoginUser(eff, this.#resolve);
  }

  async authenticate(name: string, password: string, priority: HashPriority = 'other', context: LoginContext = { tlsVersion: null }): Promise<LoginResult> {
    const user = await this.load(name);
    // An unknown user or one without a password costs one verification all the same.
    const ok = await this.#hasher.verify(user === null || user.passwordHash === '' ? null : user.passwordHash, password, priority);
    if (user === null) return { ok: false, reason: 'unknown_user' };
    if (!ok) return { ok: false, reason: 'bad_password' };
    if (user.disabled) return { ok: false, reason: 'disabled' };
    const now = Date.now();
    if (user.expiresAt !== null && user.expiresAt <= now) return { ok: false, reason: 'expired' };
    const maxAgeDays = user.view.user.policy.maxPasswordAgeDays.value;
    if (maxAgeDays !== undefined) {
      const runtime = await loadUserRuntime(this.#store.db, name);
      const changed = runtime?.passwordChangedAt ?? runtime?.createdAt ?? now;
      if (changed + maxAgeDays * DAY_MS <= now) return { ok: false, reason: 'password_expired' };
    }
    // "TLSv1.2" < "TLSv1.3" as strings, as in versions.
    if (user.minTlsVersion !== null && (context.tlsVersion === null || context.tlsVersion < user.minTlsVersion)) return { ok: false, reason: 'tls_version' };
    if (this.#hasher.needsRehash(user.passwordHash)) void this.#upgradeHash(name, password);
    return { ok: true, user };
  }

  /** A hash made with weaker parameters is replaced after a successful login, while the password is at hand. */
  async #upgradeHash(name: string, password: string): Promise<void> {
    try {
      await rehashPassword(this.#store.db, name, await this.#hasher.hash(password));
      this.#log.info({ event: 'password_hash_upgraded', user: name }, 'password hash upgraded');
    } catch (err) {
      this.#log.warn({ err, user: name }, 'password hash upgrade failed');
    }
  }

  async names(): Promise<string[]> {
    return userNames(this.#store.db);
  }
}
