import type { Logger } from 'pino';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { PasswordHasher } from '../auth/password-hasher.js';
import type { User } from '../auth/users-file.js';
import type { StoreDirectory } from '../auth/store-directory.js';
import type { CommandSpec } from '../commands/command-spec.js';
import type { Config } from '../config/schema.js';
import type { EventPublisher } from '../events/event-bus.js';
import type { PassivePortPool } from '../data/passive-ports.js';
import type { MetricsSink } from '../metrics/metrics-sink.js';
import type { StorageSession } from '../storage/backend.js';
import type { CertStore } from '../tls/cert-store.js';
import type { TicketRegistry } from '../tls/session-tickets.js';
import type { Session } from './session.js';

export type DefenderEvent = keyof Config['defender']['scores'];

/** What a session needs of the defender; the real one bans, a disabled one does nothing. */
export interface DefenderPort {
  record(ip: string, event: DefenderEvent, details?: Record<string, unknown>): void;
  isBanned(ip: string): boolean;
}

/** Everything a session shares with the rest of the server. Built once in server.ts. */
export interface ServerContext {
  readonly config: Config;
  readonly log: Logger;
  readonly certStore: CertStore;
  readonly users: StoreDirectory;
  readonly hasher: PasswordHasher;
  /** Per-account failure counts and the addresses each user logged in from (see LoginThrottle). */
  readonly loginThrottle: LoginThrottle;
  readonly commands: ReadonlyMap<string, CommandSpec>;
  readonly passivePorts: PassivePortPool;
  readonly defender: DefenderPort;
  readonly metrics: MetricsSink;
  /** Every live session's TLS ticket key: which data connections may resume which session. */
  readonly tickets: TicketRegistry;
  /** True once SIGTERM/SIGINT started a graceful stop: no new logins or transfers. */
  readonly stopping: boolean;
  /** Event hooks: what sessions publish (never waiting for a delivery), and the upload pre-commit check. */
  readonly events: EventPublisher;
  /** Audit trail: connect, TLS, logins, transfers, file operations. */
  audit(event: string, fields: Record<string, unknown>): void;
  /** The user's storage for one session; `session` identifies it in security audit events. */
  createStorage(user: User, session: { sid: string; ip: string }): StorageSession;
  /** Counts a login against the user's session limit (its policy, else limits.maxLoginsPerUser); false at the limit.
   *  With a PostgreSQL store the limit counts the sessions of every node, which takes a round trip to the store. */
  acquireLogin(session: Session, user: string, account?: User): boolean | Promise<boolean>;
  sessionEnded(session: Session, reason: string): void;
}
