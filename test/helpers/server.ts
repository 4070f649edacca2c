import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import argon2 from 'argon2';
import { pino, type Logger } from 'pino';
import { HASH_PARAMS } from '../../src/auth/password-hasher.js';
import { writeUsersFile, type UserRecord } from '../../src/auth/users-file.js';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { REDACT_PATHS } from '../../src/log/logger.js';
import { startServer, type ServerHandle } from '../../src/server.js';

export interface TestUser {
  name: string;
  password: string;
  permissions?: UserRecord['permissions'];
  allowedNetworks?: string[];
  /** SHA-256 fingerprints of client certificates that map to this user. */
  clientCertificates?: string[];
  uploadBytesPerSecond?: number;
  downloadBytesPerSecond?: number;
  requireDataSessionReuse?: boolean;
}

export interface TestServer {
  server: ServerHandle;
  port: number;
  dir: string;
  /** The folder holding the server's store (SQLite database), which changes as users log in. */
  storeDir: string;
  /** Home directory of a user (created). */
  home(user: string): string;
  /** Every log line written so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Hashing with OWASP parameters takes ~30 ms; tests reuse one hash per password. */
const hashCache = new Map<string, Promise<string>>();
export function hashPassword(password: string): Promise<string> {
  let h = hashCache.get(password);
  if (h === undefined) {
    h = argon2.hash(password, HASH_PARAMS);
    hashCache.set(password, h);
  }
  return h;
}

let rangeCursor = 0;
/**
 * A passive range of its own per test server (files run in parallel), inside 10000-19999: below the kernel's ephemeral
 * ports (32768-60999), which listeners on port 0 and outgoing connections of every test file take at random.
 */
export function passiveRange(size = 20): { minPort: number; maxPort: number } {
  const slots = Math.floor(10_000 / size);
  const slot = (process.pid * 7 + rangeCursor++) % slots;
  const minPort = 10_000 + slot * size;
  return { minPort, maxPort: minPort + size - 1 };
}

export function memoryLogger(lines: string[], level = 'debug'): Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream);
}

/** A real server on 127.0.0.1 and a free port, with its own temp dir, users and self-signed certificate. */
export async function startTestServer(opts: { users?: TestUser[]; config?: ConfigInput } = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-test-'));
  const users = opts.users ?? [{ name: 'alice', password: 'alice-secret' }];
  const records: Record<string, UserRecord> = {};
  for (const u of users) {
    await mkdir(join(dir, 'homes', u.name), { recursive: true });
    records[u.name] = {
      password: await hashPassword(u.password),
      home: join(dir, 'homes', u.name),
      permissions: u.permissions ?? ['list', 'download', 'upload', 'delete', 'rename', 'mkdir'],
      allowedNetworks: u.allowedNetworks ?? [],
      clientCertificates: u.clientCertificates ?? [],
      disabled: false,
      ...(u.uploadBytesPerSecond === undefined ? {} : { uploadBytesPerSecond: u.uploadBytesPerSecond }),
      ...(u.downloadBytesPerSecond === undefined ? {} : { downloadBytesPerSecond: u.downloadBytesPerSecond }),
      ...(u.requireDataSessionReuse === undefined ? {} : { requireDataSessionReuse: u.requireDataSessionReuse }),
    };
  }
  await writeUsersFile(join(dir, 'users.yaml'), { users: records });
  const input = opts.config ?? {};
  const config = validate(
    {
      ...input,
      listen: { port: 0, ...input.listen },
      pasv: { ...passiveRange(), ...input.pasv },
      users: { file: join(dir, 'users.yaml'), ...input.users },
      tls: { selfSignedDir: join(dir, 'certs'), ...input.tls },
      limits: { failedLoginDelayMs: 50, ...input.limits },
      defender: { file: join(dir, 'bans.json'), ...input.defender },
      store: { path: join(dir, 'state', 'ftpsd.db'), ...input.store },
      // The admin listener only where a test asks for it (test/admin/), on a free port.
      admin: { enabled: false, port: 0, ...input.admin },
    },
    'test config',
  );
  const lines: string[] = [];
  // Debug unless the test asks for less: a long fuzz run at debug would keep every command line in memory here.
  const server = await startServer({ config, baseDir: dir, log: memoryLogger(lines, input.log?.level ?? 'debug') });
  return {
    server,
    port: server.port,
    dir,
    storeDir: join(dir, 'state'),
    home: (user) => join(dir, 'homes', user),
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    async close() {
      await server.close(1_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function writeHomeFile(t: TestServer, user: string, name: string, content: string | Buffer): Promise<string> {
  const p = join(t.home(user), name);
  await writeFile(p, content);
  return p;
}
