import net from 'node:net';
import tls from 'node:tls';

export interface FtpReply {
  code: number;
  lines: string[];
  text: string;
}

/**
 * A raw FTP control client for byte-level tests: it sends exactly what it is told and parses replies per RFC 959
 * (multi-line "code-" ... "code "). Data connections resume the control TLS session unless told otherwise.
 */
export class ControlClient {
  socket: net.Socket | tls.TLSSocket;
  #buf = '';
  #pending: FtpReply[] = [];
  #waiters: Array<(r: FtpReply | null) => void> = [];
  #closed = false;
  readonly host: string;

  private constructor(socket: net.Socket, host: string) {
    this.socket = socket;
    this.host = host;
    this.#listen(socket);
  }

  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<ControlClient> {
    const socket = net.connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new ControlClient(socket, host);
  }

  /** Connects as a load balancer would: `header` (a PROXY protocol header) goes out before anything else. */
  static async connectProxied(port: number, header: Buffer | string, host = '127.0.0.1'): Promise<ControlClient> {
    const socket = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(header);
    return new ControlClient(socket, host);
  }

  /** Implicit FTPS: TLS from the first byte (the greeting comes inside it). */
  static async connectImplicit(port: number, options: tls.ConnectionOptions = {}, host = '127.0.0.1'): Promise<ControlClient> {
    const socket = tls.connect({ port, host, rejectUnauthorized: false, servername: 'localhost', ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new ControlClient(socket, host);
  }

  /** Connects, checks the 220 greeting, logs in over TLS (AUTH TLS, PBSZ 0, PROT P) and checks the 230. */
  static async loggedIn(port: number, user: string, password: string, host = '127.0.0.1'): Promise<ControlClient> {
    const c = await ControlClient.connect(port, host);
    try {
      const greeting = await c.read();
      if (greeting?.code !== 220) throw new Error(`greeting: ${greeting?.code} ${greeting?.text}`);
      const r = await c.login(user, password);
      if (r.code !== 230) throw new Error(`login of ${user}: ${r.code} ${r.text}`);
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  #listen(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.#onData(d));
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(null);
    });
    socket.on('error', () => undefined);
  }

  #onData(d: string): void {
    this.#buf += d;
    for (;;) {
      const m = /^(\d{3}) .*\r?\n/m.exec(this.#buf);
      if (m === null) return;
      const end = m.index + m[0].length;
      const block = this.#buf.slice(0, end);
      this.#buf = this.#buf.slice(end);
      const lines = block.split(/\r?\n/).filter((l) => l !== '');
      const code = Number(m[1]);
      const reply = { code, lines, text: lines.join('\n') };
      const w = this.#waiters.shift();
      if (w) w(reply);
      else this.#pending.push(reply);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Next reply, or null if the connection closed first. */
  read(timeoutMs = 10_000): Promise<FtpReply | null> {
    const p = this.#pending.shift();
    if (p) return Promise.resolve(p);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a reply')), timeoutMs);
      this.#waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  write(raw: string | Buffer): void {
    this.socket.write(raw);
  }

  async send(line: string): Promise<FtpReply> {
    this.socket.write(`${line}\r\n`);
    const r = await this.read();
    if (r === null) throw new Error(`connection closed after ${line.split(' ')[0]}`);
    return r;
  }

  /** AUTH TLS and the handshake on the same socket. */
  async authTls(options: tls.ConnectionOptions = {}): Promise<FtpReply> {
    const r = await this.send('AUTH TLS');
    if (r.code !== 234) return r;
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#listen(secure);
    return r;
  }

  /** AUTH TLS, PBSZ 0, PROT P, USER, PASS. */
  async login(user: string, password: string, options: tls.ConnectionOptions = {}): Promise<FtpReply> {
    const auth = await this.authTls(options);
    if (auth.code !== 234) throw new Error(`AUTH TLS: ${auth.text}`);
    await this.send('PBSZ 0');
    await this.send('PROT P');
    await this.send(`USER ${user}`);
    return this.send(`PASS ${password}`);
  }

  get tlsSession(): Buffer | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket.getSession() : undefined;
  }

  /** EPSV and the port it names. */
  async epsv(): Promise<number> {
    const r = await this.send('EPSV');
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (r.code !== 229 || m === null) throw new Error(`EPSV: ${r.text}`);
    return Number(m[1]);
  }

  /**
   * Opens a TLS data connection to `port`. `session` defaults to this control connection's session (a resuming
   * client); pass null for none, or another session's bytes to impersonate it.
   */
  dataConnect(port: number, opts: { session?: Buffer | null; localAddress?: string; tlsOptions?: tls.ConnectionOptions } = {}): DataClient {
    const session = opts.session === undefined ? this.tlsSession : (opts.session ?? undefined);
    const options: tls.ConnectionOptions = { port, host: this.host, rejectUnauthorized: false, servername: 'localhost', ...opts.tlsOptions };
    if (session !== undefined) options.session = session;
    if (opts.localAddress !== undefined) (options as net.TcpNetConnectOpts).localAddress = opts.localAddress;
    const socket = tls.connect(options);
    return new DataClient(socket);
  }

  close(): void {
    this.socket.destroy();
  }
}

export class DataClient {
  readonly socket: tls.TLSSocket;
  readonly received: Promise<Buffer>;
  readonly secured: Promise<boolean>;

  constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    this.received = new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks))));
    this.secured = new Promise((resolve) => {
      socket.once('secureConnect', () => resolve(true));
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    socket.on('error', () => undefined);
  }

  /** Sends bytes and closes with close_notify (a complete upload). */
  async upload(data: Buffer): Promise<void> {
    await this.secured;
    await new Promise<void>((resolve) => this.socket.end(data, resolve));
  }
}
