import type { Readable } from 'node:stream';
import type { AccessView, Located } from '../access/access-view.js';
import type { EffectiveMount } from '../access/effective.js';
import { FtpError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { FILE_RANGE, type FileInfo, type Listing, type OpenUploadOptions, type StorageSession, type Upload, type UploadMode } from './backend.js';
import { QuotaUpload, type UsageLedger } from './quota-upload.js';
import { joinLocation } from './s3-place.js';
import { resolveVirtualPath, virtualBaseName, type PathLimits } from './virtual-path.js';

// One login's storage: every virtual path is routed to the folder mounted at its longest prefix, and handled there by
// a backend jailed to that folder's root (its own home jail, symlinks and all). Directories that exist only because a
// mount lies below them are synthesised. Quota usage is counted per folder as files come and go.

export interface MountedStorageOptions {
  view: AccessView;
  limits: PathLimits;
  /** Absolute local path of a mount's location (relative locations resolve against the server's directory). */
  resolveLocation(location: string): string;
  /** A backend jailed to `root` (created when missing). */
  createBackend(root: string): StorageSession;
  ledger: UsageLedger | null;
  log?: Logger;
}

const VIRTUAL_DIR_MODE = 0o555;

export class MountedStorage implements StorageSession {
  readonly ready: Promise<void>;
  readonly #o: MountedStorageOptions;
  readonly #backends = new Map<string, StorageSession>();
  /** Virtual directories show the login time: stable for the session, not a moving "now". */
  readonly #since = new Date();

  constructor(opts: MountedStorageOptions) {
    this.#o = opts;
    for (const m of opts.view.mounts) this.#backends.set(m.path, opts.createBackend(this.#root(m)));
    this.ready = Promise.all([...this.#backends.values()].map((b) => b.ready)).then(() => undefined);
    this.ready.catch(() => undefined);
  }

  /** Real path of a mount's root, as the ledger and retention name files. */
  #root(m: EffectiveMount): string {
    return this.#o.resolveLocation(m.location);
  }

  resolve(cwd: string, clientPath: string): string {
    return resolveVirtualPath(cwd, clientPath, this.#o.limits);
  }

  #locate(path: string): Located & { backend: StorageSession } {
    const at = this.#o.view.locate(path);
    if (at === null) throw new FtpError(550, 'File not found', { reason: 'not_found' });
    return { ...at, backend: this.#backends.get(at.mount.path)! };
  }

  /** Mount points and the virtual directories above them cannot be removed, renamed or written over. */
  #refuseStructural(path: string, what: string): void {
    if (this.#o.view.isMountPoint(path) || this.#o.view.isVirtualDirectory(path)) {
      throw new FtpError(550, `${what}: ${path} is a folder of this account and cannot be changed`, { reason: 'mount_point' });
    }
  }

  #virtualDir(name: string): FileInfo {
    return { name, type: 'dir', size: 0, mtime: this.#since, mode: VIRTUAL_DIR_MODE, unique: `v${Buffer.from(name).toString('hex').slice(0, 16)}` };
  }

  async stat(path: string): Promise<FileInfo> {
    if (this.#o.view.isVirtualDirectory(path)) return this.#virtualDir(virtualBaseName(path));
    const at = this.#locate(path);
    const info = await at.backend.stat(at.rel);
    return { ...info, name: virtualBaseName(path) };
  }

  /**
   * A folder's listing streamed from its backend, with the mount points below the path shown as directories (first,
   * since they are few) and hiding entries of the same name; a virtual directory lists its mount points only.
   */
  async openListing(path: string): Promise<Listing> {
    const view = this.#o.view;
    const virtual = view.virtualChildren(path).map((n) => this.#virtualDir(n));
    const inner: Listing | null = view.isVirtualDirectory(path) ? null : await (() => {
      const at = this.#locate(path);
      return at.backend.openListing(at.rel);
    })();
    const shadowed = new Set(virtual.map((v) => v.name));
    return {
      async *[Symbol.asyncIterator]() {
        yield* virtual;
        if (inner !== null) for await (const e of inner) if (!shadowed.has(e.name)) yield e;
      },
      async *names() {
        for (const v of virtual) yield v.name;
        if (inner !== null) for await (const n of inner.names()) if (!shadowed.has(n)) yield n;
      },
      close: async () => {
        await inner?.close();
      },
    };
  }

  async list(path: string): Promise<FileInfo[]> {
    const view = this.#o.view;
    const virtual = view.virtualChildren(path);
    let entries: FileInfo[] = [];
    if (!view.isVirtualDirectory(path)) {
      const at = this.#locate(path);
      entries = await at.backend.list(at.rel);
    }
    if (virtual.length === 0) return entries;
    // A mount point hides whatever the folder above holds under the same name.
    const shadowed = new Set(virtual);
    const merged = entries.filter((e) => !shadowed.has(e.name));
    for (const name of virtual) merged.push(this.#virtualDir(name));
    return merged.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async mkdir(path: string): Promise<void> {
    if (this.#o.view.isMountPoint(path) || this.#o.view.isVirtualDirectory(path)) throw new FtpError(550, 'Directory already exists', { reason: 'exists' });
    const at = this.#locate(path);
    await at.backend.mkdir(at.rel);
  }

  async rmdir(path: string): Promise<void> {
    this.#refuseStructural(path, 'Cannot remove');
    const at = this.#locate(path);
    await at.backend.rmdir(at.rel);
  }

  async unlink(path: string): Promise<void> {
    this.#refuseStructural(path, 'Cannot delete');
    const at = this.#locate(path);
    const before = await at.backend.stat(at.rel).catch(() => null);
    await at.backend.unlink(at.rel);
    if (before?.type === 'file') await this.#count(at.mount, { bytes: -before.size, files: -1 });
  }

  async rename(from: string, to: string): Promise<void> {
    this.#refuseStructural(from, 'Cannot rename');
    this.#refuseStructural(to, 'Cannot rename');
    const a = this.#locate(from);
    const b = this.#locate(to);
    // Folders may lie on different file systems and count against different quotas: a move between them would be a
    // copy the client did not ask for.
    if (a.mount.path !== b.mount.path) throw new FtpError(550, 'Cannot rename across folders; download and upload instead', { reason: 'cross_folder' });
    await a.backend.rename(a.rel, b.rel);
  }

  async setMtime(path: string, mtime: Date): Promise<void> {
    this.#refuseStructural(path, 'Cannot change');
    const at = this.#locate(path);
    await at.backend.setMtime(at.rel, mtime);
  }

  async openRead(path: string, offset: number, chunkBytes: number): Promise<Readable> {
    const at = this.#locate(path);
    const stream = await at.backend.openRead(at.rel, offset, chunkBytes);
    if (at.mount.retentionAfterDownload && this.#o.ledger !== null) {
      // 'end' fires once the last byte has been handed on: the file was downloaded completely. Without the file range,
      // RETR reads through the stream (not the descriptor), so the stream does see its end.
      delete (stream as { [FILE_RANGE]?: unknown })[FILE_RANGE];
      const ledger = this.#o.ledger;
      const real = joinLocation(this.#root(at.mount), at.rel);
      stream.once('end', () => void ledger.downloaded(real).catch((err: unknown) => this.#o.log?.warn({ err, path }, 'download mark not recorded')));
    }
    return stream;
  }

  async openUpload(path: string, mode: UploadMode, chunkBytes: number, options?: OpenUploadOptions): Promise<Upload> {
    this.#refuseStructural(path, 'Cannot upload');
    const at = this.#locate(path);
    const ledger = this.#o.ledger;
    const m = at.mount;
    const limited = ledger !== null && (m.quotaBytes !== null || m.quotaFiles !== null);
    // Without a quota to check before the first byte, the backend's own look at the target (when it says) tells
    // what the upload replaces: one stat less per upload.
    const existing = limited ? await at.backend.stat(at.rel).catch(() => null) : undefined;
    let oldSize = existing?.type === 'file' ? existing.size : 0;
    let isNew = existing === null;
    let capBytes: number | null = null;
    if (limited && ledger !== null) {
      const used = await ledger.usage(m.scope, this.#root(m));
      // Checked before the first byte: a full folder refuses at once (RFC 959 552: exceeded storage allocation).
      if (m.quotaFiles !== null && isNew && used.files >= m.quotaFiles) throw quotaError(m, 'files');
      if (m.quotaBytes !== null) {
        const prefix = mode.kind === 'append' ? oldSize : mode.kind === 'resume' ? mode.offset : 0;
        // The new file may be as large as what is left plus what it replaces; the bytes it keeps count too.
        capBytes = m.quotaBytes - used.bytes + oldSize - prefix;
        if (capBytes <= 0) throw quotaError(m, 'bytes');
      }
    }
    const inner = await at.backend.openUpload(at.rel, mode, chunkBytes, options);
    if (ledger === null) return inner;
    if (!limited) {
      const replaced = inner.replaced !== undefined ? inner.replaced : await at.backend.stat(at.rel).then((i) => (i.type === 'file' ? i : { size: 0 }), () => null);
      oldSize = replaced?.size ?? 0;
      isNew = replaced === null;
    }
    const kept = mode.kind === 'append' ? oldSize : mode.kind === 'resume' ? mode.offset : 0;
    return new QuotaUpload(inner, {
      capBytes,
      onCapExceeded: () => quotaError(m, 'bytes'),
      reserve: async (received) => {
        // Without a byte cap the bytes were not counted on the way: the old size stands in until the commit tells.
        const expected = received === null ? oldSize : kept + received;
        const delta = { bytes: expected - oldSize, files: isNew ? 1 : 0 };
        // Without a quota nothing has to be held before the file appears: the whole change is counted once, when
        // the commit tells the stored size (one store write per upload instead of two).
        const counted = limited ? delta : { bytes: 0, files: 0 };
        if (limited) {
          // The check at open read the usage before this upload's bytes came; other uploads (on this node or another)
          // may have filled the folder since. Only a conditional update tells.
          if (!(await ledger.reserve(m.scope, delta, { bytes: m.quotaBytes, files: isNew ? m.quotaFiles : null }))) {
            throw quotaError(m, m.quotaFiles !== null && isNew && delta.bytes <= 0 ? 'files' : 'bytes');
          }
        }
        return {
          // The stored size corrects the count, in one transaction with the commit's journal (events).
          settle: (result, journal) =>
            this.#count(m, { bytes: result.size - oldSize - counted.bytes, files: delta.files - counted.files }, journal === undefined ? undefined : (trx) => journal(trx, { ...result, storagePath: result.storagePath ?? joinLocation(this.#root(m), at.rel) })),
          cancel: async () => {
            if (counted.bytes !== 0 || counted.files !== 0) await this.#count(m, { bytes: -counted.bytes, files: -counted.files });
          },
        };
      },
    });
  }

  /** True when the count (and `also`, in the same transaction) was recorded. */
  async #count(m: EffectiveMount, delta: { bytes: number; files: number }, also?: (trx: unknown) => Promise<void>): Promise<boolean> {
    try {
      await this.#o.ledger?.add(m.scope, delta, also);
      return this.#o.ledger !== null;
    } catch (err) {
      // The file operation itself succeeded; `ftpsd quota scan` puts the count right.
      this.#o.log?.error({ err, scope: m.scope }, 'quota usage not updated');
      return false;
    }
  }

  async uniqueName(dir: string, hint: string): Promise<string> {
    const at = this.#locate(dir);
    const name = await at.backend.uniqueName(at.rel, hint);
    // A folder mounted below `dir` hides a file of that name; never hand out such a name.
    return this.#o.view.virtualChildren(dir).includes(name) ? at.backend.uniqueName(at.rel, `${name}.1`) : name;
  }

  /** AVBL: the folder's free disk space, or what is left of its quota when that is less. */
  async spaceAvailable(path: string): Promise<number> {
    // Nothing can be stored in a directory that exists only in the virtual tree.
    if (this.#o.view.isVirtualDirectory(path)) return 0;
    const at = this.#locate(path);
    const free = await at.backend.spaceAvailable(at.rel);
    const m = at.mount;
    if (m.quotaBytes === null || this.#o.ledger === null) return free;
    const used = await this.#o.ledger.usage(m.scope, this.#root(m));
    return Math.max(0, Math.min(free, m.quotaBytes - used.bytes));
  }

  async sha256(path: string): Promise<string> {
    const at = this.#locate(path);
    return at.backend.sha256(at.rel);
  }
}

function quotaError(m: EffectiveMount, what: 'bytes' | 'files'): FtpError {
  const limit = what === 'bytes' ? `${m.quotaBytes} bytes` : `${m.quotaFiles} files`;
  return new FtpError(552, `Quota exceeded: ${m.path === '/' ? 'home' : m.path} holds at most ${limit}`, { reason: `quota_${what}` });
}
