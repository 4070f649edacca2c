import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { User } from '../auth/users-file.js';
import type { CommandSpec } from '../commands/command-spec.js';
import { FtpError } from '../errors.js';
import { parseCommandLine, redactCommand } from '../protocol/command-line.js';
import { LineReader, type LineEvent } from '../protocol/line-reader.js';
import { RefusalLog } from '../log/refusal-log.js';
import { formatReply, type Reply } from '../protocol/reply.js';
import { unmapIPv4 } from '../protocol/address-text.js';
import type { StorageSession } from '../storage/backend.js';
import { createSessionContext, describeTls, sessionIdCache, type TlsDescription } from '../tls/session-context.js';
import type { TicketIssuer } from '../tls/session-tickets.js';
import type { DataChannel } from './data-channel.js';
import type { ServerContext } from './server-context.js';

/** The login state of a control session: one union, no scattered flags. */
export type Phase =
  | { kind: 'greeted' }
  | { kind: 'needPass'; userName: string }
  | { kind: 'ready'; user: User; storage: StorageSession; loginAt: number }
  | { kind: 'closing' };

export type Security =
  | { kind: 'plain' }
  | { kind: 'upgrading' }
  | { kind: 'tls'; socket: TLSSocket; context: SecureContext; info: TlsDescription };

/** Transfer parameters set by TYPE, REST, RNFR, PBSZ/PROT (RFC 959, RFC 2228). */
export interface TransferParams {
  type: 'A' | 'I';
  restOffset: number;
  renameFrom: string | null;
  pbsz: boolean;
  prot: 'C' | 'P';
}

/**
 * How the control connection got its TLS: `explicit` (listen.port) starts plain and upgrades at AUTH TLS (RFC 4217);
 * `implicit` (implicit.port) starts with a TLS handshake before the greeting, as FTPS on port 990 does.
 */
export type ControlMode = 'explicit' | 'implicit';

/** Verbs from RFC 959 and its extensions that we know but do not offer: 502, not 500. */
const KNOWN_NOT_IMPLEMENTED = new Set(['ACCT', 'SMNT', 'SITE', 'LPRT', 'LPSV', 'ADAT', 'MIC', 'CONF', 'ENC', 'LANG', 'SPSV', 'XCRC', 'XMD5', 'XSHA1', 'XSHA256', 'XSHA512']);

/**
 * One control connection: reads lines, runs one command at a time in order, writes every reply. Commands live in
 * commands/, one file each; data connections in data/. ABOR, STAT and QUIT are read and acted on while a transfer
 * runs: the control socket is never paused for a transfer.
 */
export class Session {
  readonly id: string;
  readonly server: ServerContext;
  readonly mode: ControlMode;
  readonly peerIp: string;
  readonly peerPort: number;
  /** Address of our end of the control connection: the default PASV address and the passive listen address. */
  readonly localAddress: string;
  readonly connectedAt = Date.now();
  /** The balancer's address when the connection came through PROXY protocol; null for a direct connection. */
  readonly proxiedVia: string | null;

  phase: Phase = { kind: 'greeted' };
  security: Security = { kind: 'plain' };
  params: TransferParams = { type: 'I', restOffset: 0, renameFrom: null, pbsz: false, prot: 'C' };
  cwd = '/';
  failedLogins = 0;
  /** Set by HOST (RFC 7151); informational, single-home server. */
  virtualHost: string | null = null;
  /** The client software's name from CLNT, already cleaned and bounded; in logs and audit records. */
  clientName: string | null = null;
  readonly data: DataChannel;
  /** Refused commands go to the log through this budget (log.refusalsPerSession). */
  readonly refusals: RefusalLog;

  #socket: net.Socket | TLSSocket;
  readonly #baseLog: Logger;
  #log: Logger;
  readonly #raw: net.Socket;
  readonly #reader: LineReader;
  readonly #queue: LineEvent[] = [];
  #busy = false;
  #current: Promise<void> | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #loginTimer: NodeJS.Timeout | null = null;
  #closed = false;
  /** This session's TLS ticket key, from AUTH TLS until the session ends. */
  #tickets: TicketIssuer | null = null;

  /**
   * `proxied`: the client's address from a trusted balancer's PROXY header, which replaces the socket's peer (the
   * balancer) everywhere: limits, bans, logs, the audit trail and the data connection's address check.
   */
  constructor(socket: net.Socket, server: ServerContext, createDataChannel: (s: Session) => DataChannel, mode: ControlMode = 'explicit', proxied?: { ip: string; port: number; via: string }) {
    this.id = randomBytes(6).toString('hex');
    this.server = server;
    this.mode = mode;
    this.#raw = socket;
    this.#socket = socket;
    this.peerIp = proxied?.ip ?? unmapIPv4(socket.remoteAddress ?? '');
    this.peerPort = proxied?.port ?? socket.remotePort ?? 0;
    this.proxiedVia = proxied?.via ?? null;
    this.localAddress = unmapIPv4(socket.localAddress ?? '127.0.0.1');
    this.#baseLog = server.log.child({ sid: this.id, ip: this.peerIp, ...(mode === 'implicit' ? { implicit: true } : {}) });
    this.#log = this.#baseLog;
    this.refusals = new RefusalLog(this.#baseLog, { perSession: server.config.log.refusalsPerSession, summaryIntervalMs: server.config.log.refusalSummaryIntervalMs });
    this.#reader = new LineReader(server.config.limits.maxLineBytes);
    this.data = createDataChannel(this);
  }

  /** `loginTimeoutMs`: shorter than limits.loginTimeoutMs when many connections wait for a login. */
  start(loginTimeoutMs = this.server.config.limits.loginTimeoutMs): void {
    const limits = this.server.config.limits;
    this.#raw.setNoDelay(true);
    this.#raw.setKeepAlive(true, 60_000);
    this.#loginTimer = setTimeout(() => this.#timeout('login'), loginTimeoutMs).unref();
    this.#idleTimer = setTimeout(() => this.#timeout('idle'), limits.idleTimeoutMs).unref();
    this.server.audit('connect', { sid: this.id, ip: this.peerIp, port: this.peerPort, mode: this.mode, ...(this.proxiedVia === null ? {} : { via: this.proxiedVia }) });
    if (this.mode === 'implicit') {
      void this.#startImplicitTls();
      return;
    }
    this.#attach(this.#raw);
    this.send({ code: 220, text: this.server.config.listen.banner });
  }

  /**
   * Implicit FTPS: the handshake comes first and nothing, not even the greeting, is sent or read in plaintext. A
   * plain FTP client gets no reply at all: its first bytes fail the handshake (or the handshake timeout ends it).
   */
  async #startImplicitTls(): Promise<void> {
    this.security = { kind: 'upgrading' };
    if (!(await this.#negotiateTls())) return;
    this.send({ code: 220, text: this.server.config.listen.banner });
  }

  get log(): Logger {
    return this.#log;
  }

  /** CLNT: remembers the client's name and adds it to every later log line of this session. */
  setClientName(name: string): void {
    this.clientName = name;
    this.#log = this.#baseLog.child({ client: name });
  }

  get isTls(): boolean {
    return this.security.kind === 'tls';
  }

  get user(): User {
    if (this.phase.kind !== 'ready') throw new FtpError(530, 'Please login with USER and PASS', { reason: 'not_logged_in' });
    return this.phase.user;
  }

  get storage(): StorageSession {
    if (this.phase.kind !== 'ready') throw new FtpError(530, 'Please login with USER and PASS', { reason: 'not_logged_in' });
    return this.phase.storage;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(reply: Reply): void {
    if (this.#closed || this.#socket.destroyed) return;
    this.#socket.write(formatReply(reply));
  }

  #attach(socket: net.Socket | TLSSocket): void {
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  #detach(socket: net.Socket | TLSSocket): void {
    socket.off('data', this.#onData);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    for (const event of this.#reader.push(chunk)) {
      if (this.#busy && event.kind === 'line' && this.#tryDuringTransfer(event.bytes)) continue;
      this.#queue.push(event);
    }
    // Bounded: a client that pipelines far ahead is paused until we catch up (TCP backpressure).
    if (this.#queue.length > this.server.config.limits.maxPipelinedCommands) this.#socket.pause();
    this.#pump();
  };

  readonly #onError = (err: Error): void => {
    this.log.debug({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'control connection error');
  };

  readonly #onClose = (): void => {
    this.close('peer closed');
  };

  /** ABOR, STAT and QUIT act at once while a transfer runs; other verbs wait their turn. */
  #tryDuringTransfer(bytes: Buffer): boolean {
    const parsed = parseCommandLine(bytes);
    if (!parsed.ok) return false;
    const spec = this.server.commands.get(parsed.verb);
    if (spec?.duringTransfer !== true) return false;
    void this.#runSpec(spec, parsed.verb, parsed.arg);
    return true;
  }

  #pump(): void {
    if (this.#busy || this.#closed) return;
    const event = this.#queue.shift();
    if (event === undefined) {
      if (this.#socket.isPaused() && this.security.kind !== 'upgrading') this.#socket.resume();
      return;
    }
    this.#busy = true;
    this.#current = this.#dispatch(event).finally(() => {
      this.#busy = false;
      this.#current = null;
      this.#idleTimer?.refresh();
      this.#pump();
    });
  }

  async #dispatch(event: LineEvent): Promise<void> {
    if (event.kind === 'overlong') {
      this.log.warn({ event: 'protocol_violation', kind: 'line_too_long', bytes: event.bytes }, 'command line too long');
      this.server.defender.record(this.peerIp, 'protocolViolation', { kind: 'line_too_long' });
      this.send({ code: 500, text: `Command line too long (limit ${this.server.config.limits.maxLineBytes} bytes)` });
      return;
    }
    if (event.bytes.subarray(0, 6).toString('latin1') === 'PROXY ') {
      // A PROXY header from an address not in proxyProtocol.trustedCidrs: its addresses are never believed.
      this.log.warn({ event: 'proxy_header_untrusted' }, 'PROXY header from an untrusted address; connection closed');
      this.server.defender.record(this.peerIp, 'protocolViolation', { kind: 'proxy_header_untrusted' });
      this.send({ code: 421, text: 'PROXY header not accepted from your address' });
      this.close('untrusted PROXY header');
      return;
    }
    const parsed = parseCommandLine(event.bytes);
    if (!parsed.ok) {
      const text = parsed.problem === 'invalid_utf8' ? 'Command is not valid UTF-8' : 'Syntax error, command unrecognized';
      this.refusals.write('info', { event: 'bad_command', problem: parsed.problem }, 'unparsable command');
      if (parsed.problem !== 'empty') this.server.defender.record(this.peerIp, 'protocolViolation', { kind: parsed.problem });
      this.send({ code: 500, text });
      return;
    }
    const spec = this.server.commands.get(parsed.verb);
    if (spec === undefined) {
      const known = KNOWN_NOT_IMPLEMENTED.has(parsed.verb);
      this.log.debug({ verb: parsed.verb }, 'unknown command');
      this.#reply(parsed.verb, { code: known ? 502 : 500, text: known ? `${parsed.verb} not implemented` : `${parsed.verb} not understood` });
      return;
    }
    await this.#runSpec(spec, parsed.verb, parsed.arg);
  }

  async #runSpec(spec: CommandSpec, verb: string, arg: string): Promise<void> {
    // Checked first: the object and the redaction would be built for every command only to be dropped.
    if (this.log.isLevelEnabled('debug')) this.log.debug({ cmd: redactCommand(verb, arg) }, 'command');
    if (spec.availability === 'loggedIn' && this.phase.kind !== 'ready') {
      this.server.defender.record(this.peerIp, 'commandBeforeLogin', { verb });
      this.#reply(verb, { code: 530, text: 'Please login with USER and PASS' });
      return;
    }
    if (spec.needsArg === true && arg.trim() === '') {
      this.#reply(verb, { code: 501, text: `Syntax: ${spec.syntax}` });
      return;
    }
    try {
      const result = await spec.run(this, arg);
      if (result !== undefined) this.#reply(verb, result);
    } catch (err) {
      if (err instanceof FtpError) {
        const level = err.code >= 500 || err.code === 425 ? 'info' : 'debug';
        this.refusals.write(level, { verb, code: err.code, reason: err.reason, path: this.#virtualPath(spec, arg), err: describeCause(err.cause) }, 'command refused');
        this.#reply(verb, { code: err.code, text: err.message });
      } else {
        // Internal details stay in the log; the client learns only that it failed.
        this.log.error({ verb, err }, 'command failed');
        this.#reply(verb, { code: 451, text: 'Requested action aborted: local error in processing' });
      }
    }
  }

  /** The client's path argument as a path in its home, for the log (never where the server keeps the file). */
  #virtualPath(spec: CommandSpec, arg: string): string | undefined {
    if (this.phase.kind !== 'ready' || !/ \[?<path>\]?$/.test(spec.syntax) || / <[^>]+> <path>/.test(spec.syntax)) return undefined;
    try {
      return this.phase.storage.resolve(this.cwd, arg).slice(0, 256);
    } catch {
      return undefined;
    }
  }

  #reply(verb: string, reply: Reply): void {
    this.server.metrics.command(verb, reply.code);
    this.send(reply);
  }

  /** Refuses when policy wants TLS for login and this connection is still plain (RFC 4217 §4). */
  requireTlsForLogin(): void {
    if (this.server.config.tls.requireForLogin && !this.isTls) {
      throw new FtpError(530, 'TLS required: send AUTH TLS before USER and PASS', { reason: 'tls_required' });
    }
  }

  /**
   * AUTH TLS: answer 234 and upgrade this same socket (RFC 4217 §4). Reading stops before the reply goes out; bytes
   * the client sent after the AUTH line cannot be honest (it must wait for 234), so they close the connection, as
   * smtp-server does against STARTTLS command injection.
   */
  async upgradeToTls(): Promise<void> {
    if (this.#queue.length > 0 || this.#reader.pendingBytes > 0) {
      this.log.warn({ event: 'protocol_violation', kind: 'pipelined_after_auth' }, 'plaintext pipelined after AUTH TLS');
      this.server.defender.record(this.peerIp, 'protocolViolation', { kind: 'pipelined_after_auth' });
      this.send({ code: 421, text: 'Commands pipelined after AUTH TLS; closing connection' });
      this.close('pipelined after AUTH TLS');
      return;
    }
    this.security = { kind: 'upgrading' };
    this.#detach(this.#raw);
    this.#raw.pause();
    this.#raw.write(formatReply({ code: 234, text: 'Proceed with TLS negotiation' }));
    this.server.metrics.command('AUTH', 234);
    await this.#negotiateTls();
  }

  /**
   * The server side of the TLS handshake on the raw control socket, with this session's own SecureContext (its
   * ticket keys bind the data connections to it). True once secure; false when it failed and the session is closed.
   */
  async #negotiateTls(): Promise<boolean> {
    const cert = this.server.certStore.current();
    this.#tickets ??= this.server.tickets.issue({ sessionId: this.id, ip: this.peerIp });
    const context = createSessionContext(cert, this.server.config.tls, this.#tickets);
    // Mutual TLS: a certificate is asked for only when a user maps to one. It is not verified against a CA here:
    // PASS compares its SHA-256 fingerprint with the user's list, so an unknown or missing one fails at login.
    const requestCert = this.server.users.anyNeedsClientCert();
    // `server`: the session-ID cache its data connections resume from (TLS 1.2 clients that send no ticket).
    const secure = new tls.TLSSocket(this.#raw, { isServer: true, secureContext: context, requestCert, rejectUnauthorized: false, server: sessionIdCache(context) });
    this.#socket = secure;
    const timeoutMs = this.server.config.tls.handshakeTimeoutMs;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => fail(new Error('TLS handshake timeout')), timeoutMs).unref();
      const fail = (err: Error) => {
        clearTimeout(timer);
        secure.off('error', fail);
        secure.off('close', closed);
        this.log.info({ event: 'tls_failed', err: { message: err.message } }, 'TLS handshake failed');
        this.server.defender.record(this.peerIp, 'tlsHandshakeFailure', { message: err.message });
        this.server.metrics.tlsHandshake('control', 'failed');
        secure.destroy();
        this.close('TLS handshake failed');
        resolve(false);
      };
      // A peer that goes away mid-handshake ends the socket without an 'error'; without this the session would
      // linger until the handshake timeout and hold up a graceful shutdown.
      const closed = () => {
        if (!this.#closed) fail(new Error('connection closed during TLS handshake'));
        else {
          clearTimeout(timer); // closed by us (shutdown, ban): not the peer's failure
          resolve(false);
        }
      };
      secure.once('error', fail);
      secure.once('close', closed);
      secure.once('secure', () => {
        clearTimeout(timer);
        secure.off('error', fail);
        secure.off('close', closed);
        const info = describeTls(secure);
        this.#tickets?.controlHandshakeDone();
        this.security = { kind: 'tls', socket: secure, context, info };
        this.server.metrics.tlsHandshake('control', 'ok');
        this.server.audit('tls', { sid: this.id, ip: this.peerIp, protocol: info.version, cipher: info.cipher, mode: this.mode });
        this.#attach(secure);
        resolve(true);
      });
    });
  }

  /** Called by PASS after the password verified. */
  completeLogin(user: User, storage: StorageSession): void {
    this.#tickets?.setUser(user.name);
    this.phase = { kind: 'ready', user, storage, loginAt: Date.now() };
    this.cwd = '/';
    if (this.#loginTimer !== null) clearTimeout(this.#loginTimer);
    this.#loginTimer = null;
  }

  /** REIN (RFC 959): back to the state right after the greeting, keeping TLS (RFC 4217 §11). */
  reinitialize(): void {
    this.#tickets?.setUser(null);
    if (this.phase.kind === 'ready') this.server.sessionEnded(this, 'rein');
    this.data.reset();
    this.phase = { kind: 'greeted' };
    this.params = { ...this.params, type: 'I', restOffset: 0, renameFrom: null };
    this.cwd = '/';
    if (this.#loginTimer === null) this.#loginTimer = setTimeout(() => this.#timeout('login'), this.server.config.limits.loginTimeoutMs).unref();
  }

  #timeout(which: 'login' | 'idle'): void {
    if (this.#closed) return;
    // A command still running (a login queued for argon2, a long listing) is not idleness; the clock restarts after it.
    if (which === 'idle' && (this.data.busy || this.#busy)) {
      this.#idleTimer?.refresh();
      return;
    }
    this.log.info({ event: `${which}_timeout` }, `${which} timeout`);
    // Connections that never log in hold a place others need; an address that keeps doing it is banned.
    if (which === 'login') this.server.defender.record(this.peerIp, 'loginTimeout');
    this.send({ code: 421, text: which === 'login' ? 'Login timeout, closing control connection' : 'Idle timeout, closing control connection' });
    this.close(`${which} timeout`);
  }

  /** Waits for the running command (used by QUIT after a transfer, and by graceful shutdown). */
  async settled(): Promise<void> {
    await this.#current?.catch(() => undefined);
  }

  /** Ends the session: flushes what was written, frees passive ports, records the disconnect. Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    if (this.#loginTimer !== null) clearTimeout(this.#loginTimer);
    this.data.reset();
    this.refusals.flush();
    this.#tickets?.release(this.server.config.tls.siblingTicketRetentionMs);
    this.phase = { kind: 'closing' };
    const socket = this.#socket;
    // Mid-handshake there is nothing to flush, and a TLSSocket ended before its handshake finished never closes.
    if (this.security.kind === 'upgrading') socket.destroy();
    else socket.end();
    // A peer that never reads would keep the socket open forever; give the goodbye a moment, then cut.
    setTimeout(() => socket.destroy(), 2_000).unref();
    this.server.sessionEnded(this, reason);
    this.server.audit('disconnect', { sid: this.id, ip: this.peerIp, reason, ms: Date.now() - this.connectedAt });
  }
}

/** A refusal's cause for the log: the errno code and system call, not the message, which names server-side paths. */
function describeCause(cause: unknown): Record<string, unknown> | undefined {
  if (!(cause instanceof Error)) return undefined;
  const { code, syscall } = cause as NodeJS.ErrnoException;
  return code === undefined ? { message: cause.message } : { code, syscall };
}
