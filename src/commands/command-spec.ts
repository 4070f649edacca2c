import type { Reply } from '../protocol/reply.js';
import type { Session } from '../control/session.js';

/** Where a verb is allowed. 'any' also covers the time before login. */
export type Availability = 'any' | 'beforeLogin' | 'loggedIn';

/**
 * One FTP verb described as data. FEAT and HELP are generated from these, so they list exactly what is implemented.
 */
export interface CommandSpec {
  verb: string;
  /** Older spellings answered the same way (XPWD for PWD, RFC 775). */
  aliases?: readonly string[];
  /** Shown by HELP. */
  syntax: string;
  availability: Availability;
  /** The verb's argument must be present (501 otherwise). */
  needsArg?: boolean;
  /** FEAT line(s) this verb adds (RFC 2389), or a function of the session for lines that depend on policy. */
  feat?: string | ((session: Session) => string | null);
  /** ABOR, STAT and QUIT act even while a transfer runs (RFC 959 §4.1.3). */
  duringTransfer?: boolean;
  run(session: Session, arg: string): Promise<Reply | void> | Reply | void;
}
