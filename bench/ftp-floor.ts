import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { join, resolve, sep } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { readResumptionOffer } from '../src/tls/client-hello.js';
import { createSelfSignedCertificate } from '../src/tls/self-signed.js';
import { sessionIdCache } from '../src/tls/session-context.js';
import { type ObservedTls, observedTls } from './observed-tls.js';

// The floor under ftpsd's per-file cost with its guarantees: the least JavaScript a Node process can run for one
// FTPS transfer that is still durable, bound and audited. One file, no framework, no store, no configuration:
// - explicit TLS on the control connection (AUTH TLS), PROT P required for transfers;
// - a passive listener per transfer; the data connection must resume the control session's TLS session (a secure
//   context per session, so no other session's ticket resumes);
// - uploads through the observed TLS path (a JS duplex, as ftpsd) so that a missing close_notify refuses the upload;
//   written to a temporary file, SHA-256 of the bytes, fsync of file and directory, renamed into place;
// - one hash-chained audit line per transfer and one JSON log line, each one write(2);
// - downloads on the native TLS path, small files read with one call.
// What it leaves out and ftpsd does: users and passwords (any login is taken), per-path permissions, confinement
// beyond a prefix check, quotas, events, metrics, limits and timeouts, listings beyond MLSD's size and type. A figure
// for it is what those guarantees cost in Node on this machine, not a server anyone should run.
// Usage: node --import tsx bench/ftp-floor.ts --port P --root DIR --audit FILE  (prints "ready" when listening)

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    root: { type: 'string' },
    audit: { type: 'string' },
  },
});
if (args.port === undefined || args.root === undefined || args.audit === undefined) throw new Error('--port, --root and --audit are required');
const root = resolve(args.root);
const { keyPem, certPem } = await createSelfSignedCertificate({ names: ['localhost', '127.0.0.1'] });
const auditFd = fs.openSync(args.audit, 'a');
const logFd = fs.openSync('/dev/null', 'a');
let auditPrevious = '0'.repeat(64);
/** Files at most this large are read and written with one call on the event loop, as ftpsd's default. */
const SYNC_IO_MAX = 64 * 1024;

function audit(record: Record<string, unknown>): void {
  const line = JSON.stringify({ ...record, time: new Date().toISOString(), prev: auditPrevious });
  auditPrevious = createHash('sha256').update(line).digest('hex');
  fs.writeSync(auditFd, `${line}\n`);
  fs.writeSync(logFd, `${JSON.stringify({ level: 30, msg: 'transfer', ...record })}\n`);
}

type Pending = { kind: 'upload' | 'download' | 'list'; path: string };

class Session {
  /** Random ticket keys of its own (Node makes them per context): no other session's ticket resumes here. */
  readonly context = tls.createSecureContext({ key: keyPem, cert: certPem });
  socket: net.Socket | tls.TLSSocket;
  cwd = '/';
  prot = false;
  buffered = '';
  listener: net.Server | null = null;
  /** A data connection that started TLS before its transfer command. */
  early: ObservedTls | null = null;
  waiting: ((raw: net.Socket, options: tls.TLSSocketOptions) => void) | null = null;

  constructor(raw: net.Socket) {
    this.socket = raw;
    raw.setNoDelay(true);
    this.listen(raw);
    this.reply(220, 'floor ready');
  }

  listen(s: net.Socket): void {
    s.setEncoding('latin1');
    s.on('data', (chunk: string) => this.onData(chunk));
    s.on('error', () => this.close());
    s.on('close', () => this.close());
  }

  reply(code: number, text: string): void {
    this.socket.write(`${code} ${text}\r\n`);
  }

  close(): void {
    this.listener?.close();
    this.early?.socket.destroy();
  }

  onData(chunk: string): void {
    this.buffered += chunk;
    let at: number;
    while ((at = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, at).replace(/\r$/, '');
      this.buffered = this.buffered.slice(at + 1);
      const space = line.indexOf(' ');
      const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
      const arg = space < 0 ? '' : line.slice(space + 1);
      if (verb === 'AUTH') {
        this.upgrade();
        return;
      }
      this.command(verb, arg);
    }
  }

  upgrade(): void {
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    this.reply(234, 'AUTH TLS ok');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.context, server: sessionIdCache(this.context) });
    this.socket = secure;
    this.listen(secure);
  }

  path(arg: string): string {
    const p = resolve(root, `.${resolve('/', this.cwd, arg)}`);
    if (p !== root && !p.startsWith(root + sep)) throw new Error('outside');
    return p;
  }

  command(verb: string, arg: string): void {
    try {
      switch (verb) {
        case 'USER':
          return this.reply(331, 'password');
        case 'PASS':
          return this.reply(230, 'logged in');
        case 'PBSZ':
          return this.reply(200, 'PBSZ=0');
        case 'PROT':
          this.prot = arg.toUpperCase() === 'P';
          return this.reply(200, 'PROT ok');
        case 'FEAT':
          this.socket.write('211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPSV\r\n MDTM\r\n MFMT\r\n SIZE\r\n MLST type*;size*;modify*;\r\n UTF8\r\n211 End\r\n');
          return;
        case 'OPTS':
        case 'TYPE':
        case 'NOOP':
          return this.reply(200, 'ok');
        case 'SYST':
          return this.reply(215, 'UNIX Type: L8');
        case 'PWD':
          return this.reply(257, `"${this.cwd}"`);
        case 'CWD': {
          const p = this.path(arg);
          if (!fs.statSync(p).isDirectory()) return this.reply(550, 'not a directory');
          this.cwd = resolve('/', this.cwd, arg);
          return this.reply(250, 'ok');
        }
        case 'MKD':
          fs.mkdirSync(this.path(arg));
          return this.reply(257, `"${arg}" created`);
        case 'SIZE':
          return this.reply(213, String(fs.statSync(this.path(arg)).size));
        case 'MDTM': {
          const t = fs.statSync(this.path(arg)).mtime.toISOString();
          return this.reply(213, t.slice(0, 19).replace(/[-T:]/g, ''));
        }
        case 'MFMT': {
          const space = arg.indexOf(' ');
          const t = arg.slice(0, space);
          const when = new Date(Date.UTC(+t.slice(0, 4), +t.slice(4, 6) - 1, +t.slice(6, 8), +t.slice(8, 10), +t.slice(10, 12), +t.slice(12, 14)));
          fs.utimesSync(this.path(arg.slice(space + 1)), when, when);
          return this.reply(213, `Modify=${t}; ${arg.slice(space + 1)}`);
        }
        case 'EPSV':
        case 'PASV':
          return this.passive(verb);
        case 'STOR':
          return this.transfer({ kind: 'upload', path: this.path(arg) });
        case 'RETR':
          return this.transfer({ kind: 'download', path: this.path(arg) });
        case 'MLSD':
          return this.transfer({ kind: 'list', path: this.path(arg) });
        case 'QUIT':
          this.reply(221, 'bye');
          this.socket.end();
          return;
        default:
          return this.reply(502, 'not in the floor server');
      }
    } catch (err) {
      this.reply(550, (err as Error).message);
    }
  }

  passive(verb: string): void {
    this.listener?.close();
    const server = net.createServer((raw) => {
      server.close();
      if (this.listener === server) this.listener = null;
      raw.setNoDelay(true);
      raw.once('data', (first: Buffer) => {
        raw.pause();
        raw.unshift(first);
        // TLS 1.2 clients that resume by session ID need the cache, which Node consults through a JS hello parser.
        const offer = readResumptionOffer(first);
        const options: tls.TLSSocketOptions = { isServer: true, secureContext: this.context };
        if (offer === null || !(offer.psk || offer.ticket)) options.server = sessionIdCache(this.context);
        if (this.waiting !== null) {
          const take = this.waiting;
          this.waiting = null;
          take(raw, options);
        } else {
          // The client starts TLS before its command (curl): the direction is not known, so the observed path.
          this.early = observedTls(raw, options);
          this.early.socket.on('error', () => undefined);
        }
      });
    });
    this.listener = server;
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      if (verb === 'EPSV') this.reply(229, `Entering Extended Passive Mode (|||${port}|)`);
      else this.reply(227, `Entering Passive Mode (127,0,0,1,${port >> 8},${port & 255})`);
    });
  }

  transfer(pending: Pending): void {
    if (!this.prot) return this.reply(521, 'PROT P required');
    if (pending.kind === 'download' && !fs.statSync(pending.path).isFile()) return this.reply(550, 'not a file');
    this.reply(150, 'opening data connection');
    const start = (layer: ObservedTls) => {
      const bound = () => {
        if (layer.socket.isSessionReused()) return true;
        layer.socket.destroy();
        this.reply(425, 'data connection must resume the control TLS session');
        return false;
      };
      if (pending.kind === 'upload') this.upload(layer, pending.path, bound);
      else this.download(layer.socket, pending, bound);
    };
    if (this.early !== null) {
      const layer = this.early;
      this.early = null;
      start(layer);
    } else
      this.waiting = (raw, options) => {
        if (pending.kind === 'upload') start(observedTls(raw, options));
        else start({ socket: new tls.TLSSocket(raw, options), endedCleanly: () => false });
      };
  }

  download(socket: tls.TLSSocket, pending: Pending, bound: () => boolean): void {
    socket.on('error', () => undefined);
    whenSecure(socket, () => {
      if (!bound()) return;
      let body: Buffer | string;
      if (pending.kind === 'list') {
        body = fs
          .readdirSync(pending.path)
          .map((name) => {
            const st = fs.statSync(join(pending.path, name));
            return `type=${st.isDirectory() ? 'dir' : 'file'};size=${st.size}; ${name}\r\n`;
          })
          .join('');
      } else {
        const fd = fs.openSync(pending.path, 'r');
        const size = fs.fstatSync(fd).size;
        if (size > SYNC_IO_MAX) {
          fs.createReadStream('', { fd }).pipe(socket);
          socket.on('finish', () => this.finishDownload(pending, size));
          return;
        }
        body = Buffer.allocUnsafe(size);
        fs.readSync(fd, body, 0, size, 0);
        fs.closeSync(fd);
      }
      socket.end(body, () => this.finishDownload(pending, Buffer.byteLength(body)));
    });
  }

  finishDownload(pending: Pending, bytes: number): void {
    if (pending.kind === 'download') audit({ event: 'download', path: pending.path, bytes });
    this.reply(226, 'transfer complete');
  }

  /** A temporary file, digest, fsync of file and directory, rename, audit; refused without close_notify. */
  upload(layer: ObservedTls, path: string, bound: () => boolean): void {
    const { socket } = layer;
    socket.on('error', () => undefined);
    const dir = resolve(path, '..');
    const temp = join(dir, `.upload-${randomBytes(6).toString('hex')}`);
    const fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o640);
    const hash = createHash('sha256');
    const held: Buffer[] = [];
    let heldBytes = 0;
    let bytes = 0;
    let refused = false;
    whenSecure(socket, () => {
      if (bound()) return;
      refused = true;
      fs.closeSync(fd);
      fs.unlinkSync(temp);
    });
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes > SYNC_IO_MAX) {
        fs.writeSync(fd, Buffer.concat(held));
        held.length = 0;
        heldBytes = 0;
      }
    });
    socket.on('end', () => {
      if (refused) return;
      if (heldBytes > 0) fs.writeSync(fd, held.length === 1 ? held[0]! : Buffer.concat(held));
      if (!layer.endedCleanly()) {
        fs.closeSync(fd);
        fs.unlinkSync(temp);
        socket.destroy();
        return this.reply(426, 'upload ended without close_notify');
      }
      socket.end();
      // fsync stays off the event loop, as any server that serves other sessions meanwhile must keep it.
      fs.fsync(fd, (err) => {
        fs.closeSync(fd);
        if (err !== null) return this.reply(451, err.message);
        fs.renameSync(temp, path);
        const dirFd = fs.openSync(dir, 'r');
        fs.fsync(dirFd, () => {
          fs.closeSync(dirFd);
          audit({ event: 'upload', path, bytes, sha256: hash.digest('hex') });
          this.reply(226, 'transfer complete');
        });
      });
    });
  }
}

/**
 * A turn of the event loop after 'secure': a TLS 1.3 server writes its renewed ticket after Node emits 'secure', and
 * data written before it breaks OpenSSL clients (decode_error). A connection started before its command may be
 * secure already.
 */
function whenSecure(socket: tls.TLSSocket, cb: () => void): void {
  if ((socket as unknown as { _secureEstablished?: boolean })._secureEstablished === true) cb();
  else socket.once('secure', () => setImmediate(cb));
}

const server = net.createServer((raw) => new Session(raw));
server.listen(Number(args.port), '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));
