import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

// A throwaway PostgreSQL from Debian's `postgresql` package: initdb into a temporary folder (as the `postgres` user
// when running as root, since PostgreSQL refuses to run as root), pg_ctl on a free loopback port with its socket in
// that folder. A few seconds to start. `npm test` starts one server for the whole run (scripts/test.sh, named by
// FTPSD_TEST_PG_URL_BASE): each test file then gets fresh databases on it and its stop() leaves it running. A test
// file run alone starts its own server and stops it in `after`.

const run = promisify(execFile);
const BIN_DIRS = ['/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/17/bin'];

export interface TestPostgres {
  /** A fresh, empty database on this server, as a postgres:// URL. */
  newDatabase(): Promise<string>;
  stop(): Promise<void>;
}

function binDir(): string {
  const dir = BIN_DIRS.find((d) => existsSync(join(d, 'initdb')));
  if (dir === undefined) throw new Error('PostgreSQL is not installed (initdb not found): run scripts/install-test-deps.sh');
  return dir;
}

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { timeout: 60_000 });
  else await run(cmd, args, { timeout: 60_000 });
}

/** postgres://postgres@127.0.0.1:PORT/ of the run's shared server, or null. */
export const SHARED_PG_URL_BASE = process.env.FTPSD_TEST_PG_URL_BASE ?? null;

async function createDatabase(base: string): Promise<string> {
  const name = `ftpsd_${randomBytes(5).toString('hex')}`;
  const client = new pg.Client({ connectionString: `${base}postgres` });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return `${base}${name}`;
}

export async function startPostgres(): Promise<TestPostgres> {
  if (SHARED_PG_URL_BASE !== null) {
    const base = SHARED_PG_URL_BASE.endsWith('/') ? SHARED_PG_URL_BASE : `${SHARED_PG_URL_BASE}/`;
    return { newDatabase: () => createDatabase(base), stop: async () => undefined };
  }
  const bin = binDir();
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await chmod(dir, 0o700);
  const data = join(dir, 'data');
  await asPostgres(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  let port = 0;
  let lastError: unknown;
  // A port taken meanwhile by another test fails the start; try a few others.
  for (let attempt = 0; attempt < 5 && port === 0; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * 9_000);
    try {
      await asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', '-o', `-p ${candidate} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`, 'start']);
      port = candidate;
    } catch (err) {
      lastError = err;
    }
  }
  if (port === 0) throw new Error(`PostgreSQL did not start: ${(lastError as Error).message}`);
  return {
    newDatabase: () => createDatabase(`postgres://postgres@127.0.0.1:${port}/`),
    async stop() {
      await asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Both engines, for tests that run the same checks on each: SQLite needs nothing, PostgreSQL is started once. */
export type EngineName = 'sqlite' | 'postgres';
export const ENGINES: readonly EngineName[] = ['sqlite', 'postgres'];
