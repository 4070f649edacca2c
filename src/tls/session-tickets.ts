import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';

/**
 * Which TLS session tickets a control session's connections accept, and why.
 *
 * Issued: every control session has its own ticket key (a 16-byte key name, a 16-byte HMAC key and a 16-byte AES
 * key). Every ticket sent on the control connection or on any of its data connections is sealed with that key, so the
 * key name in a ticket names the control session that minted it.
 *
 * Renewed on resumption: a resumed data connection is answered with a fresh ticket (OpenSSL's "renew" result of the
 * ticket key callback). Without it OpenSSL sends no ticket on a resumed TLS 1.3 connection, and TLS 1.3 clients treat
 * a ticket as single-use (RFC 8446 §C.4): curl's second data connection then offers no ticket at all, Java's JSSE runs
 * out of PSKs after a few transfers. With it, a client always holds a ticket of this session, whatever the number of
 * transfers. Except on a connection known to carry an upload: clients that upload never read the data connection
 * (lftp, curl 7.x), and a ticket left unread makes their kernel answer the close with a reset that can destroy the
 * end of the upload. Those clients reuse their ticket instead. A newer ticket (lftp presents the one from its last data
 * connection) is as good as the first: same key.
 *
 * Accepted on a data connection:
 * - a ticket minted by this control session or any of its data connections;
 * - a ticket minted by a *sibling*: another control session of the same user from the same address. Go's TLS client
 *   shares one session cache between the parallel control connections of rclone (jlaffaye/ftp#342), so a data
 *   connection may present the ticket of a sibling that is still logging in (it got its ticket at AUTH TLS, before
 *   PASS) or that has already ended (the cache outlives it). A sibling still logging in is confirmed after the
 *   handshake, before a byte moves: its login must complete, as the same user, within tls.siblingLoginWaitMs. An ended
 *   session's key is kept for tls.siblingTicketRetentionMs with the user it had. The binding exists
 *   against someone else racing to the passive port; the same account on the same address is not that. Sibling
 *   resumptions are logged and counted.
 * Refused (full handshake or refusal after it, then 425 when reuse is required): tickets of any other user, of another
 * address, of an earlier server process, or forged. The control connection itself never resumes a foreign ticket:
 * before login there is no user to be a sibling of.
 */
export interface TicketOwner {
  readonly sessionId: string;
  readonly ip: string;
}

/** Who minted the ticket a data connection resumed with. */
export type TicketOrigin = { kind: 'own' } | { kind: 'sibling'; sessionId: string; minter: TicketIssuer };

const KEY_BYTES = 16;
/** The ticket key callback must hand back key buffers even when it rejects a ticket. */
const UNUSED_KEY = Buffer.alloc(KEY_BYTES);

/** OpenSSL's ticket key callback results (SSL_CTX_set_tlsext_ticket_key_cb). */
const TICKET_UNKNOWN = 0;
const TICKET_OK = 1;
const TICKET_RENEW = 2;

type TicketKeyResult = [number, Buffer, Buffer] | [number, Buffer, Buffer, Buffer, Buffer];

/** The native side of a SecureContext: Node's hook for OpenSSL's ticket key callback (stable since Node 0.11). */
interface NativeTicketHooks {
  enableTicketKeyCallback(): void;
  onticketkeycallback: (name: Buffer, iv: Buffer, enc: boolean) => TicketKeyResult;
}

const issuersByContext = new WeakMap<SecureContext, TicketIssuer>();

/** Who minted the ticket of the handshake that just completed on `context` (see TicketIssuer.takeOrigin). */
export function takeTicketOrigin(context: SecureContext): TicketOrigin | null {
  return issuersByContext.get(context)?.takeOrigin() ?? null;
}

/** See TicketIssuer.confirm; true for a context without a ticket issuer. */
export function confirmTicketOrigin(context: SecureContext, origin: TicketOrigin | null, waitMs: number): Promise<boolean> {
  return issuersByContext.get(context)?.confirm(origin, waitMs) ?? Promise.resolve(true);
}

/** Whether the next resumed handshake on `context` gets a fresh ticket (not for a known upload, see above). */
export function renewTicketsOnResumption(context: SecureContext, renew: boolean): void {
  const issuer = issuersByContext.get(context);
  if (issuer !== undefined) issuer.renewOnResumption = renew;
}

/** One control session's ticket key. */
export class TicketIssuer {
  readonly owner: TicketOwner;
  readonly #registry: TicketRegistry;
  readonly name: Buffer;
  readonly #hmac: Buffer;
  readonly #aes: Buffer;
  readonly #nameHex: string;
  /** Set while the control connection's own handshake runs: no foreign ticket is accepted there. */
  #controlHandshakeDone = false;
  #lastOrigin: TicketOrigin | null = null;
  /** The logged-in user; kept after the session ended, for siblings that still hold its tickets. */
  #user: string | null = null;
  #ended = false;
  /** Sibling data connections waiting for this session's login to complete. */
  #loginWaiters = new Set<() => void>();
  renewOnResumption = true;

  constructor(registry: TicketRegistry, owner: TicketOwner) {
    this.#registry = registry;
    this.owner = owner;
    const key = randomBytes(KEY_BYTES * 3);
    this.name = key.subarray(0, KEY_BYTES);
    this.#hmac = key.subarray(KEY_BYTES, KEY_BYTES * 2);
    this.#aes = key.subarray(KEY_BYTES * 2);
    this.#nameHex = this.name.toString('hex');
  }

  /** Seals and opens tickets of `context` (created for this session) with this key. */
  attach(context: SecureContext): void {
    issuersByContext.set(context, this);
    const native = (context as unknown as { context: NativeTicketHooks }).context;
    native.enableTicketKeyCallback();
    native.onticketkeycallback = (name, iv, enc) => (enc ? this.#seal(iv) : this.#open(name));
  }

  /** The control connection's handshake is over: its data connections may now meet siblings' tickets. */
  controlHandshakeDone(): void {
    this.#controlHandshakeDone = true;
  }

  /** PASS succeeded (user) or REIN logged out (null). */
  setUser(user: string | null): void {
    this.#user = user;
    for (const wake of this.#loginWaiters) wake();
  }

  /**
   * Who minted the ticket of the handshake that just completed, read once in its 'secure' event (OpenSSL opens the
   * ticket synchronously inside the handshake, and one session runs one data handshake at a time). Null: no ticket
   * was opened (a full handshake, or session-ID resumption of this session's own cache).
   */
  takeOrigin(): TicketOrigin | null {
    const origin = this.#lastOrigin;
    this.#lastOrigin = null;
    return origin;
  }

  /**
   * After the handshake, before a byte moves: true when the resumed ticket binds the connection to this session, its
   * own or a confirmed sibling's. A sibling still logging in is waited for, at most `waitMs`.
   */
  async confirm(origin: TicketOrigin | null, waitMs: number): Promise<boolean> {
    if (origin === null || origin.kind === 'own') return true;
    const minter = origin.minter;
    if (minter.#user === null && !minter.#ended) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          minter.#loginWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs).unref();
        minter.#loginWaiters.add(done);
      });
    }
    return this.#user !== null && minter.#user === this.#user;
  }

  /** The control session ended: its key stays known for the ticket lifetime, then goes. */
  release(retainMs: number): void {
    this.#ended = true;
    for (const wake of this.#loginWaiters) wake();
    setTimeout(() => this.#registry.remove(this.#nameHex, this), retainMs).unref();
  }

  #seal(iv: Buffer): TicketKeyResult {
    return [TICKET_OK, this.#hmac, this.#aes, this.name, randomBytes(iv.length)];
  }

  #open(name: Buffer): TicketKeyResult {
    const renew = this.renewOnResumption ? TICKET_RENEW : TICKET_OK;
    this.renewOnResumption = true;
    const nameHex = name.toString('hex');
    if (nameHex === this.#nameHex) {
      this.#lastOrigin = { kind: 'own' };
      return [renew, this.#hmac, this.#aes];
    }
    const minter = this.#registry.get(nameHex);
    if (minter !== undefined && this.#controlHandshakeDone && this.#maySibling(minter)) {
      this.#lastOrigin = { kind: 'sibling', sessionId: minter.owner.sessionId, minter };
      // Renewed with this session's key: the client's next ticket belongs to this session.
      return [renew, minter.#hmac, minter.#aes];
    }
    this.#lastOrigin = null;
    return [TICKET_UNKNOWN, UNUSED_KEY, UNUSED_KEY];
  }

  /** Same address, and the same user or (still logging in) possibly so: confirm() decides after the handshake. */
  #maySibling(minter: TicketIssuer): boolean {
    if (this.#user === null || minter.owner.ip !== this.owner.ip) return false;
    return minter.#user === this.#user || (minter.#user === null && !minter.#ended);
  }
}

/** Every control session's ticket key, by key name (ended ones for the ticket lifetime): one per server. */
export class TicketRegistry {
  readonly #issuers = new Map<string, TicketIssuer>();

  issue(owner: TicketOwner): TicketIssuer {
    const issuer = new TicketIssuer(this, owner);
    this.#issuers.set(issuer.name.toString('hex'), issuer);
    return issuer;
  }

  get(nameHex: string): TicketIssuer | undefined {
    return this.#issuers.get(nameHex);
  }

  remove(nameHex: string, issuer: TicketIssuer): void {
    if (this.#issuers.get(nameHex) === issuer) this.#issuers.delete(nameHex);
  }

  get size(): number {
    return this.#issuers.size;
  }
}
