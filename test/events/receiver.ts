import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

// A webhook receiver as a partner would write one: it verifies the signature (HMAC-SHA256 of "<timestamp>.<body>"
// with the endpoint's secret, exactly as docs/events.md shows) and keeps what it got. It can be taken down and
// brought back on the same port, answer slowly, or answer with another status.

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The event: the JSON body, or for a check the Ftpsd-Event header. */
  event: Record<string, unknown>;
  signatureValid: boolean;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Ids of events received (duplicates included). */
  ids(): string[];
  /** Waits until `n` distinct event ids have arrived (bounded). */
  waitFor(n: number, timeoutMs?: number, match?: (r: Received) => boolean): Promise<Received[]>;
  /** What to answer; default 200 "ok". */
  respond: (r: Received) => { status: number; body?: string; delayMs?: number };
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export function verifySignature(secret: string, headers: http.IncomingHttpHeaders, signed: string | Buffer): boolean {
  const t = Number(headers['ftpsd-timestamp']);
  const given = String(headers['ftpsd-signature'] ?? '');
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > 300) return false;
  const expected = 'v1=' + createHmac('sha256', secret).update(`${t}.`).update(signed).digest('hex');
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

export async function startReceiver(opts: { secret: string; tls?: { key: string; cert: string } }): Promise<Receiver> {
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  let server: http.Server;
  let port = 0;
  const sockets = new Set<import('node:net').Socket>();
  const r: Receiver = {
    url: '',
    port: 0,
    received,
    ids: () => received.map((x) => String(x.event.id)),
    respond: () => ({ status: 200, body: 'ok' }),
    async waitFor(n, timeoutMs = 20_000, match = () => true) {
      const distinct = () => new Map(received.filter(match).map((x) => [String(x.event.id), x]));
      const deadline = Date.now() + timeoutMs;
      while (distinct().size < n) {
        if (Date.now() > deadline) throw new Error(`receiver: ${distinct().size} of ${n} events after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 200);
          waiters.add(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return [...distinct().values()];
    },
    async down() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async up() {
      await listen();
    },
    async close() {
      if (server.listening) await r.down();
    },
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = req.headers['ftpsd-event'];
      const isCheck = req.headers['content-type'] === 'application/octet-stream';
      const signed = isCheck ? Buffer.from(String(header), 'base64') : body;
      let event: Record<string, unknown> = {};
      try {
        event = JSON.parse(signed.toString('utf8')) as Record<string, unknown>;
      } catch {
        // left empty: the test sees it
      }
      const valid = verifySignature(opts.secret, req.headers, signed) && (!isCheck || createHash('sha256').update(body).digest('hex') === event.sha256);
      const rec: Received = { headers: req.headers, body, event, signatureValid: valid, at: Date.now() };
      const answer = r.respond(rec);
      const send = () => {
        received.push(rec);
        for (const w of [...waiters]) w();
        waiters.clear();
        res.writeHead(answer.status, { 'content-type': 'text/plain' });
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  };
  const create = () => (opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler));
  const listen = async () => {
    server = create();
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    r.port = port;
    r.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/hook`;
  };
  await listen();
  return r;
}
