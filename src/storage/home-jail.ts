import { lstat, mkdir, realpath } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Logger } from '../log/logger.js';
import { FtpError, fsErrorToFtp } from '../errors.js';
import { virtualBaseName, virtualParent } from './virtual-path.js';

/**
 * Maps virtual paths to real paths under the home directory and refuses any that a symlink leads out of it: the
 * deepest existing ancestor is realpath'ed and must lie inside the realpath'ed home.
 *
 * The check and the later operation are separate system calls, so someone with shell access to the home could swap
 * a directory for a symlink in between; FTP clients cannot create symlinks, and opens of the final component add
 * O_NOFOLLOW where they can.
 */
export class HomeJail {
  readonly #home: Promise<string>;
  readonly #log: Logger | undefined;

  constructor(home: string, log: Logger | undefined) {
    this.#log = log;
    this.#home = mkdir(home, { recursive: true }).then(() => realpath(home));
    // Failures surface on the first operation (and through `ready`); never as an unhandled rejection.
    this.#home.catch(() => undefined);
  }

  /** The realpath'ed home, once it exists. */
  get ready(): Promise<string> {
    return this.#home.catch((err: unknown) => {
      throw new FtpError(550, 'Home directory not available', { reason: 'home_unavailable', cause: err });
    });
  }

  /** Real path of `vpath` with every symlink followed; the result (or its deepest existing ancestor) is inside home. */
  async follow(vpath: string): Promise<string> {
    const home = await this.ready;
    if (vpath === '/') return home;
    const real = await deepestReal(home + vpath);
    this.#check(home, real, vpath);
    return real;
  }

  /**
   * Real path of the entry `vpath` itself, without following it when it is a symlink (unlink, rename, rmdir and
   * mkdir act on the link, which is harmless); its parent is followed and checked.
   */
  async entry(vpath: string): Promise<string> {
    const parent = await this.follow(virtualParent(vpath));
    return vpath === '/' ? parent : join(parent, virtualBaseName(vpath));
  }

  /** True when the real path is the home or below it. */
  async contains(real: string): Promise<boolean> {
    return inside(await this.ready, real);
  }

  #check(home: string, real: string, vpath: string): void {
    if (inside(home, real)) return;
    this.#log?.warn({ path: vpath, reason: 'path_outside_home' }, 'path outside home refused');
    throw new FtpError(550, 'Path outside home directory', { reason: 'path_outside_home' });
  }
}

function inside(home: string, real: string): boolean {
  return home === sep || real === home || real.startsWith(home + sep);
}

/**
 * realpath of `path` when it exists, otherwise realpath of its deepest existing ancestor joined with the missing
 * rest. A dangling symlink on the way is refused: writing through it would create its target, wherever that is.
 */
async function deepestReal(path: string): Promise<string> {
  const missing: string[] = [];
  let current = path;
  // Bounded by the number of segments: each round moves one level up.
  for (;;) {
    try {
      const real = await realpath(current);
      return missing.length === 0 ? real : join(real, ...missing.reverse());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toStorageError(err);
    }
    if (await isSymlink(current)) throw new FtpError(550, 'File not found', { reason: 'broken_link' });
    const parent = dirname(current);
    if (parent === current) throw new FtpError(550, 'File not found', { reason: 'not_found' });
    missing.push(current.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
    current = parent;
  }
}

async function isSymlink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * fsErrorToFtp plus what only the storage layer meets: ELOOP, from a symlink loop or from O_NOFOLLOW meeting a
 * symlink swapped in after the check, is refused like any other path that cannot be used.
 */
export function toStorageError(err: unknown, what?: string): FtpError {
  if (err instanceof FtpError) return err;
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ELOOP') {
    return new FtpError(550, 'Too many levels of symbolic links', { reason: 'symlink_loop', cause: err });
  }
  return fsErrorToFtp(err, what);
}
