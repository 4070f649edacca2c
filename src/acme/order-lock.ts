import { hostname } from 'node:os';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AcmeError } from './acme-error.js';

/** Who holds the lock, as written in the lock file for the next process (and a human) to read. */
interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

const LOCK_FILE = 'order.lock';
/** The owner is written right after the file is created; a file still unreadable after this long was left by a crash in between. */
const UNREADABLE_LOCK_GRACE_MS = 60_000;

/**
 * One certificate order at a time per ACME directory, across processes: the running server's scheduled renewal and an
 * operator's `ftpsd cert renew` would otherwise both order (spending the CA's rate limit) and overwrite each other's
 * files. The lock is a file created with O_EXCL naming its owner; a lock whose process is gone (same host, pid no
 * longer alive: a crash or kill -9) is taken over.
 */
export async function acquireOrderLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (const attempt of ['first', 'after stale'] as const) {
    try {
      const file = await open(path, 'wx', 0o600);
      try {
        await file.writeFile(JSON.stringify(me) + '\n');
      } finally {
        await file.close();
      }
      return async () => {
        // Only our own lock is removed: a stale-lock takeover by another process must not be undone by us.
        const owner = await readOwner(path);
        if (owner?.pid === me.pid && owner.since === me.since) await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new AcmeError('store', `cannot create the order lock ${path}: ${(err as Error).message}`, { cause: err });
      }
      const owner = await readOwner(path);
      const stale = owner === null ? await olderThan(path, UNREADABLE_LOCK_GRACE_MS) : isGone(owner);
      if (attempt === 'first' && stale) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const who = owner === null ? 'another process' : `process ${owner.pid} on ${owner.host} (since ${owner.since})`;
      throw new AcmeError('busy', `a certificate order into ${dir} is already running in ${who}; try again when it ends`);
    }
  }
  throw new AcmeError('busy', `a certificate order into ${dir} is already running`);
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string' || typeof parsed.since !== 'string') return null;
    return { pid: parsed.pid, host: parsed.host, since: parsed.since };
  } catch {
    return null;
  }
}

/** The owner ran on this host and its process no longer exists. A lock from another host is never presumed gone. */
function isGone(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    // Gone meanwhile: nothing to take over, the next attempt creates it.
    return true;
  }
}
