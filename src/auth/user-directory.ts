import type { Logger } from 'pino';
import { readUsersFile, toUser, writeUsersFile, type User, type UsersFile } from './users-file.js';
import type { HashPriority } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';

export type LoginResult =
  | { ok: true; user: User }
  | { ok: false; reason: 'unknown_user' | 'bad_password' | 'disabled' };

/** The users known to the running server; replaced as a whole on reload so a session never sees half a file. */
export class UserDirectory {
  #users: ReadonlyMap<string, User> = new Map();
  /** Computed at reload, not per handshake. */
  #anyClientCert = false;
  readonly #file: string;
  readonly #resolveHome: (p: string) => string;
  readonly #hasher: PasswordHasher;
  readonly #log: Logger;

  constructor(opts: { file: string; resolveHome: (p: string) => string; hasher: PasswordHasher; log: Logger }) {
    this.#file = opts.file;
    this.#resolveHome = opts.resolveHome;
    this.#hasher = opts.hasher;
    this.#log = opts.log;
  }

  get file(): string {
    return this.#file;
  }

  get size(): number {
    return this.#users.size;
  }

  /** Throws ConfigError and keeps the users already loaded when the file is invalid. */
  reload(): { added: string[]; removed: string[] } {
    const data = readUsersFile(this.#file);
    const next = new Map(Object.entries(data.users).map(([name, rec]) => [name, toUser(name, rec, this.#resolveHome)]));
    const added = [...next.keys()].filter((n) => !this.#users.has(n));
    const removed = [...this.#users.keys()].filter((n) => !next.has(n));
    this.#users = next;
    this.#anyClientCert = [...next.values()].some((u) => u.clientCertificates.length > 0);
    return { added, removed };
  }

  /** True when some user maps to client certificates, so TLS handshakes must ask the client for one. */
  anyNeedsClientCert(): boolean {
    return this.#anyClientCert;
  }

  get(name: string): User | undefined {
    return this.#users.get(name);
  }

  async authenticate(name: string, password: string, priority: HashPriority = 'other'): Promise<LoginResult> {
    const user = this.#users.get(name);
    const ok = await this.#hasher.verify(user?.passwordHash ?? null, password, priority);
    if (user === undefined) return { ok: false, reason: 'unknown_user' };
    if (!ok) return { ok: false, reason: 'bad_password' };
    if (user.disabled) return { ok: false, reason: 'disabled' };
    if (this.#hasher.needsRehash(user.passwordHash)) void this.#upgradeHash(name, password);
    return { ok: true, user };
  }

  /** A hash made with weaker parameters is replaced after a successful login, while the password is at hand. */
  async #upgradeHash(name: string, password: string): Promise<void> {
    try {
      const hash = await this.#hasher.hash(password);
      const data: UsersFile = readUsersFile(this.#file);
      const rec = data.users[name];
      if (rec === undefined) return;
      rec.password = hash;
      await writeUsersFile(this.#file, data);
      this.reload();
      this.#log.info({ event: 'password_hash_upgraded', user: name }, 'password hash upgraded');
    } catch (err) {
      this.#log.warn({ err, user: name }, 'password hash upgrade failed');
    }
  }
}
