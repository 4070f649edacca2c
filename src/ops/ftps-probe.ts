import net from 'node:net';
import tls from 'node:tls';

export interface ProbeReply {
  code: number;
  text: string;
}

export class ProbeError extends Error {
  constructor(
    readonly step: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProbeError';
  }
}

export interface ProbeOptions {
  host: string;
  port: number;
  /** Bounds every wait: connect, each reply, each handshake, each data connection. */
  timeoutMs: number;
  /** SNI sent in the handshakes (certificates are not verified here; the certificate check judges them). */
  servername?: string;
}

export interface DataResult {
  /** Whether the data connection's TLS handshake resumed the control connection's TLS session. */
  resumed: boolean;
  received: Buffer;
}

/**
 * A small explicit-FTPS client for self-diagnosis: one control connection, AUTH TLS on it (RFC 4217), passive data
 * connections that offer the control connection's TLS session for resumption, as FileZilla, WinSCP, curl and lftp do.
 */
export class FtpsProbe {
  #socket: net.Socket | tls.TLSSocket;
  #buf = '';
  #lines: string[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  #session: Buffer | undefined;
  readonly #opts: ProbeOptions;

  private constructor(socket: net.Socket, opts: ProbeOptions) {
    this.#socket = socket;
    this.#opts = opts;
    this.#attach(socket);
  }

  static async connect(opts: ProbeOptions): Promise<{ probe: FtpsProbe; greeting: ProbeReply }> {
    const socket = net.connect({ host: opts.host, port: opts.port });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      }),
      opts.timeoutMs,
      'connect',
    ).catch((err: unknown) => {
      socket.destroy();
      throw new ProbeError('connect', `cannot connect to ${opts.host}:${opts.port}: ${(err as Error).message}`, { cause: err });
    });
    const probe = new FtpsProbe(socket, opts);
    return { probe, greeting: await probe.read('greeting') };
  }

  get tlsSocket(): tls.TLSSocket | null {
    return this.#socket instanceof tls.TLSSocket ? this.#socket : null;
  }

  #attach(socket: net.Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.#buf += d;
      const parts = this.#buf.split('\n');
      this.#buf = parts.pop() ?? '';
      this.#lines.push(...parts.map((l) => l.replace(/\r$/, '')));
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => undefined);
  }

  /** One reply, multi-line ones included (RFC 959 section 4.2: "123-" ... "123 "). */
  async read(step: string): Promise<ProbeReply> {
    const deadline = Date.now() + this.#opts.timeoutMs;
    for (;;) {
      const endAt = this.#lines.findIndex((l, i) => /^\d{3}(?: |$)/.test(l) && (i === 0 || l.slice(0, 3) === this.#lines[0]!.slice(0, 3)));
      if (endAt >= 0) {
        const block = this.#lines.splice(0, endAt + 1);
        return { code: Number(block[endAt]!.slice(0, 3)), text: block.join('\n') };
      }
      if (this.#closed) throw new ProbeError(step, 'the server closed the control connection');
      const left = deadline - Date.now();
      if (left <= 0) throw new ProbeError(step, `no reply within ${this.#opts.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  async send(line: string, step = line.split(' ')[0] ?? line): Promise<ProbeReply> {
    this.#socket.write(`${line}\r\n`);
    return this.read(step);
  }

  /** AUTH TLS and the handshake on the same socket. */
  async authTls(): Promise<{ reply: ProbeReply; socket: tls.TLSSocket | null }> {
    const reply = await this.send('AUTH TLS');
    if (reply.code !== 234) return { reply, socket: null };
    const raw = this.#socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: this.#servername() });
    // TLS 1.3 sends session tickets after the handshake; keep the newest to offer on data connections.
    secure.on('session', (s: Buffer) => (this.#session = s));
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      }),
      this.#opts.timeoutMs,
      'TLS handshake',
    ).catch((err: unknown) => {
      secure.destroy();
      throw new ProbeError('AUTH TLS', `TLS handshake failed: ${(err as Error).message}`, { cause: err });
    });
    this.#socket = secure;
    this.#attach(secure);
    return { reply, socket: secure };
  }

  /** EPSV (RFC 2428): the port only, the host is the control connection's. */
  async epsv(): Promise<number> {
    const r = await this.send('EPSV');
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (r.code !== 229 || m === null) throw new ProbeError('EPSV', `EPSV answered: ${r.text}`);
    return Number(m[1]);
  }

  /**
   * Runs one transfer command on a fresh passive port: opens the TLS data connection offering the control session,
   * sends `upload` (or reads everything for a download), and returns the final reply.
   */
  async transfer(command: string, upload: Buffer | null): Promise<{ preliminary: ProbeReply; final: ProbeReply | null; data: DataResult | null }> {
    const port = await this.epsv();
    const socket = tls.connect({ host: this.#opts.host, port, rejectUnauthorized: false, servername: this.#servername(), session: this.#session ?? this.tlsSocket?.getSession() });
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const secured = withTimeout(
      new Promise<boolean>((resolve) => {
        socket.once('secureConnect', () => resolve(true));
        socket.once('close', () => resolve(false));
      }),
      this.#opts.timeoutMs,
      'data handshake',
    ).catch(() => false);

    const preliminary = await this.send(command);
    if (preliminary.code >= 300) {
      socket.destroy();
      return { preliminary, final: null, data: null };
    }
    const ok = await secured;
    const resumed = ok && socket.isSessionReused();
    if (ok && upload !== null) socket.end(upload);
    else if (!ok) socket.destroy();
    await withTimeout(closed, this.#opts.timeoutMs, 'data connection close').catch(() => socket.destroy());
    const final = await this.read(command.split(' ')[0] ?? command);
    return { preliminary, final, data: ok ? { resumed, received: Buffer.concat(chunks) } : null };
  }

  #servername(): string | undefined {
    const name = this.#opts.servername ?? this.#opts.host;
    return net.isIP(name) === 0 ? name : undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#socket.end('QUIT\r\n');
    setTimeout(() => this.#socket.destroy(), this.#opts.timeoutMs).unref();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
