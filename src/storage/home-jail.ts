import { constants, mkdirSync, readlinkSync, realpathSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { FtpError, fsErrorToFtp } from '../errors.js';
import { Descriptor } from './descriptor.js';

/*
 * Home confinement that holds while the tree changes under it.
 *
 * The threat: someone other than the FTP client (a local account, another service sharing the files, a sync tool)
 * swaps a directory in the home for a symlink to a directory outside it, in a loop, while FTP commands run. A check
 * of the path by name followed by an operation by name is a race the swapper wins now and then: the kernel follows
 * whatever is there at the moment of the open or rename. vsftpd, ProFTPD and Pure-FTPd avoid it with chroot, Go
 * servers with os.Root (openat with no-follow). Node has neither chroot nor openat, so this module gets the same
 * guarantee from descriptors: every operation acts on an inode that was verified to be inside the home, never on a
 * name resolved a second time.
 *
 * - Verify what was opened. A path is opened first (symlinks followed, so links that stay inside the home keep
 *   working), then the kernel is asked where the descriptor really is: readlink("/proc/self/fd/N") is the path of
 *   the opened inode itself, not of the name we passed. Outside the home, the descriptor is closed and the command
 *   refused with 550 before a byte moves. Files are opened O_PATH (no read, no side effect of opening a device or a
 *   FIFO), verified and type-checked, and only then reopened for reading through their /proc/self/fd link, which
 *   yields exactly the verified inode.
 * - Act relative to a verified directory. "/proc/self/fd/N/name" resolves N through its magic link to the very
 *   directory the descriptor holds and then looks up `name` in it: openat(N, name), the missing call. Creating the
 *   upload temporary (O_CREAT|O_EXCL|O_NOFOLLOW), the commit rename, unlink, mkdir, rmdir, rename and the per-entry
 *   lstat of a listing all go through the verified directory's descriptor, so a symlink swapped in for the directory
 *   after the check is never followed: the operation lands in the directory that was checked.
 * - Verify again around mutations. The one change a descriptor does not defeat is the verified directory itself
 *   being moved (renamed) out of the home, which needs write access both inside the home and at the destination.
 *   Mutations re-read the directory's real path right after they act; if it left the home, a created directory or
 *   committed upload is removed again, and the event is refused and audited. Unlink, rmdir and rename cannot be
 *   undone in that case: it is reported.
 *
 * The window that remains: between the last verification and the system call, a *directory move* (not a symlink
 * swap) of a verified directory to outside the home lets that one call act in the moved directory: on files that
 * were inside the home an instant earlier, and the post-check reports it. Reads cannot leak: a descriptor verified
 * inside the home before the first byte is read holds an inode that was inside the home. Hard links are content:
 * a file hard-linked into the home is inside it. A race the server detects is refused with 550 ("Path outside home
 * directory") and recorded as the audit event `confinement_violation` with the virtual path only.
 *
 * This needs Linux's /proc/self/fd (checked when a home is opened; the home is then refused if it is missing).
 *
 * Opens, the readlink checks and the closes here run synchronously on the event loop (see descriptor.ts): the kernel
 * answers them from memory, and being synchronous also leaves nothing to run between a check and the operation
 * after it. Directories are opened O_DIRECTORY, which fails with ENOTDIR before a FIFO or device swapped in would be
 * opened (and block the loop); files are located O_PATH, which opens nothing.
 */

/** Linux open(2) O_PATH: a descriptor that names an inode without opening it for I/O. Node does not export it. */
export const O_PATH = 0o10000000;
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const SLASH = 0x2f;

/** What a caught escape reports: the virtual path and the operation, never a real path. */
export interface ConfinementViolation {
  path: string;
  op: string;
  reason: 'outside_home' | 'moved_outside_home' | 'changed_during_operation';
}

/** "/proc/self/fd/N": the inode a descriptor holds, usable as a path. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** A directory opened by the jail and verified inside the home. Names under it are resolved in it, never again by path. */
export class VerifiedDir {
  readonly #jail: HomeJail;
  readonly #handle: Descriptor;
  /** Real path when opened (inside the home). */
  readonly real: string;
  /** Virtual path it was opened as, for refusals and audit events. */
  readonly vpath: string;
  #closed = false;

  constructor(jail: HomeJail, handle: Descriptor, real: string, vpath: string) {
    this.#jail = jail;
    this.#handle = handle;
    this.real = real;
    this.vpath = vpath;
  }

  get fd(): number {
    return this.#handle.fd;
  }

  /** Path of `name` inside this very directory (openat semantics). `name` is one segment. */
  at(name: string): string {
    return `${fdPath(this.#handle.fd)}/${name}`;
  }

  /**
   * Throws (550, audited) when the directory has been moved out of the home since it was opened. Synchronous (one
   * readlink of /proc, see realInside): nothing runs between the check and the caller's next step.
   */
  recheck(op: string, vpath = this.vpath): void {
    this.#jail.verifyNow(this.#handle.fd, vpath, op, 'moved_outside_home');
  }

  /** fsync of the directory: makes a rename in it durable. On the thread pool: it waits for the disk. */
  sync(): Promise<void> {
    return this.#handle.sync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close().catch(() => undefined);
  }
}

/** Maps virtual paths to descriptors verified to lie inside the home (see the comment at the top of this file). */
export class HomeJail {
  readonly #home: Promise<{ path: string; bytes: Buffer }>;
  readonly #log: Logger | undefined;
  readonly #onViolation: ((v: ConfinementViolation) => void) | undefined;
  /** The home's real path as /proc shows it, once known: every VerifiedDir exists only after it is. */
  #homeNow: Buffer | null = null;

  constructor(home: string, log: Logger | undefined, onViolation?: (v: ConfinementViolation) => void) {
    this.#log = log;
    this.#onViolation = onViolation;
    this.#home = openHome(home);
    this.#home.then((h) => (this.#homeNow = h.bytes), () => undefined);
    // Failures surface on the first operation (and through `ready`); never as an unhandled rejection.
    this.#home.catch(() => undefined);
  }

  /** The realpath'ed home, once it exists. */
  get ready(): Promise<string> {
    return this.#home.then(
      (h) => h.path,
      (err: unknown) => {
        this.#log?.error({ err, reason: 'home_unavailable' }, 'home directory not available');
        throw new FtpError(550, 'Home directory not available', { reason: 'home_unavailable', cause: err });
      },
    );
  }

  /**
   * An O_PATH descriptor of what `vpath` names, symlinks followed, verified inside the home. Refused with 550 (and
   * audited) when it is not. Closing it is the caller's job.
   */
  async openPath(vpath: string, op: string): Promise<Descriptor> {
    const home = await this.ready;
    return this.#verified(Descriptor.open(join(home, vpath), O_PATH), vpath, op);
  }

  /** The directory `vpath` names, symlinks followed, verified inside the home. */
  async openDir(vpath: string, op: string): Promise<VerifiedDir> {
    const home = await this.ready;
    return this.#dir(Descriptor.open(join(home, vpath), O_RDONLY | O_DIRECTORY), vpath, op);
  }

  /** The directory `name` inside `parent`, not followed when it is a symlink (RMD's inspection of what it removes). */
  openChildDir(parent: VerifiedDir, name: string, vpath: string, op: string): VerifiedDir {
    return this.#dir(Descriptor.open(parent.at(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW), vpath, op);
  }

  /** A directory given by a real path found through a verified descriptor (where a symlink inside the home leads). */
  openRealDir(real: string, vpath: string, op: string): VerifiedDir {
    return this.#dir(Descriptor.open(real, O_RDONLY | O_DIRECTORY), vpath, op);
  }

  /**
   * Real path of the descriptor when it lies inside the home, else null (listings show such links unresolved).
   *
   * The readlink of /proc/self/fd/N runs on the event loop like the opens around it: the kernel answers it from the
   * descriptor's dentry chain in memory, without touching the disk, even when the home is on a network file system.
   */
  async realInside(fd: number): Promise<string | null> {
    const { bytes } = await this.#home;
    return this.realInsideNow(bytes, fd);
  }

  /** realInside with the home already known, without a promise in between. */
  realInsideNow(home: Buffer, fd: number): string | null {
    const real = readlinkSync(fdPath(fd), { encoding: 'buffer' });
    return isInside(home, real) ? real.toString('utf8') : null;
  }

  /**
   * Real path of the descriptor, which must lie inside the home: else 550 and a `confinement_violation`. Needs the
   * home known, which it is for every descriptor opened through the jail.
   */
  verifyNow(fd: number, vpath: string, op: string, reason: ConfinementViolation['reason'] = 'outside_home'): string {
    const home = this.#homeNow;
    if (home === null) throw new FtpError(550, 'Home directory not available', { reason: 'home_unavailable' });
    const real = this.realInsideNow(home, fd);
    if (real !== null) return real;
    this.violation({ path: vpath, op, reason });
  }

  /** Logs and reports a caught escape, then refuses the command. */
  violation(v: ConfinementViolation): never {
    this.#log?.warn({ path: v.path, op: v.op, reason: 'path_outside_home', violation: v.reason }, 'path outside home refused');
    this.#onViolation?.(v);
    throw new FtpError(550, 'Path outside home directory', { reason: 'path_outside_home' });
  }

  #verified(handle: Descriptor, vpath: string, op: string): Descriptor {
    try {
      this.verifyNow(handle.fd, vpath, op);
      return handle;
    } catch (err) {
      // Nothing was started on it: closed at once.
      handle.close().catch(() => undefined);
      throw err;
    }
  }

  #dir(handle: Descriptor, vpath: string, op: string): VerifiedDir {
    try {
      return new VerifiedDir(this, handle, this.verifyNow(handle.fd, vpath, op), vpath);
    } catch (err) {
      handle.close().catch(() => undefined);
      throw err;
    }
  }
}

/** Creates the home (mkdir -p) and learns its real path as /proc reports descriptors, which verification compares to. */
async function openHome(home: string): Promise<{ path: string; bytes: Buffer }> {
  mkdirSync(home, { recursive: true });
  const path = realpathSync.native(home);
  const handle = Descriptor.open(path, O_RDONLY | O_DIRECTORY);
  try {
    const bytes = readlinkSync(fdPath(handle.fd), { encoding: 'buffer' });
    if (bytes.toString('utf8') !== path) throw new Error(`${fdPath(handle.fd)} does not name the home: confinement needs Linux /proc`);
    return { path, bytes };
  } finally {
    await handle.close();
  }
}

/** Real path of a virtual path by name (the jail opens it; nothing trusts this string alone). */
function join(home: string, vpath: string): string {
  return vpath === '/' ? home : home === '/' ? vpath : home + vpath;
}

function isInside(home: Buffer, real: Buffer): boolean {
  if (home.length === 1 && home[0] === SLASH) return real[0] === SLASH;
  if (real.length < home.length || !real.subarray(0, home.length).equals(home)) return false;
  return real.length === home.length || real[home.length] === SLASH;
}

/**
 * fsErrorToFtp plus what only the storage layer meets: ELOOP, from a symlink loop or from O_NOFOLLOW meeting a
 * symlink where a file or directory was expected, is refused like any other path that cannot be used.
 */
export function toStorageError(err: unknown, what?: string): FtpError {
  if (err instanceof FtpError) return err;
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ELOOP') {
    return new FtpError(550, 'Too many levels of symbolic links', { reason: 'symlink_loop', cause: err });
  }
  return fsErrorToFtp(err, what);
}
