import { type Socket, connect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';

// A minimal FTPS client that logs in (RFC 4217: AUTH TLS, then USER/PASS inside TLS) and then sits idle, to measure
// what an idle logged-in session costs the server.

export interface IdleSession {
  close(): void;
}

/** Reads FTP replies off a stream: a final reply is a line starting with three digits and a space (RFC 959 4.2). */
class ReplyReader {
  #buf = '';
  #waiters: Array<{ resolve: (line: string) => void; reject: (err: Error) => void }> = [];
  #replies: string[] = [];

  attach(stream: Socket | TLSSocket): void {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl).replace(/\r$/, '');
        this.#buf = this.#buf.slice(nl + 1);
        if (/^\d{3} /.test(line)) this.#push(line);
      }
    });
  }

  detach(stream: Socket): void {
    stream.removeAllListeners('data');
  }

  #push(line: string): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(line);
    else this.#replies.push(line);
  }

  fail(err: Error): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  next(): Promise<string> {
    const r = this.#replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}

async function expect(reader: ReplyReader, code: string, what: string): Promise<void> {
  const line = await reader.next();
  if (!line.startsWith(code)) throw new Error(`${what}: expected ${code}, got ${line}`);
}

/** Opens a control connection, upgrades it to TLS and logs in; rejects after timeoutMs. */
export async function openIdleSession(port: number, user: string, password: string, timeoutMs: number): Promise<IdleSession> {
  const raw = connect(port, '127.0.0.1');
  let tls: TLSSocket | undefined;
  const reader = new ReplyReader();
  const close = () => {
    tls?.destroy();
    raw.destroy();
  };
  const timer = setTimeout(() => {
    reader.fail(new Error(`login not done within ${timeoutMs} ms`));
    close();
  }, timeoutMs);
  const onError = (err: Error) => reader.fail(err);
  raw.on('error', onError);
  try {
    reader.attach(raw);
    await expect(reader, '220', 'greeting');
    raw.write('AUTH TLS\r\n');
    await expect(reader, '234', 'AUTH TLS');
    reader.detach(raw);
    tls = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: undefined });
    tls.on('error', onError);
    await new Promise<void>((resolve, reject) => {
      tls!.once('secureConnect', resolve);
      tls!.once('error', reject);
    });
    reader.attach(tls);
    tls.write(`USER ${user}\r\n`);
    await expect(reader, '331', 'USER');
    tls.write(`PASS ${password}\r\n`);
    await expect(reader, '230', 'PASS');
    return { close };
  } catch (err) {
    close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
