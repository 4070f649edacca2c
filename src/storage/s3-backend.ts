import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { FtpError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { FileInfo, Listing, OpenUploadOptions, StorageSession, Upload, UploadMode } from './backend.js';
import type { S3Clients } from './s3-clients.js';
import { copyObject } from './s3-copy.js';
import { isNotFound, s3Status, toS3Error } from './s3-errors.js';
import { DIR_MODE, FILE_MODE, objectUnique, S3Listing } from './s3-listing.js';
import { parseS3Path, type S3Place } from './s3-place.js';
import { openS3Upload, SHA256_META, type S3Object } from './s3-upload.js';
import { INVALID_REST } from './local-upload.js';
import { nameProblem, resolveVirtualPath, virtualBaseName, virtualParent, type PathLimits } from './virtual-path.js';

// A folder on an S3-compatible store (bucket and key prefix): the virtual path "/a/b" is the key PREFIX + "a/b".
// Directories are key prefixes; MKD writes a marker object "a/" so an empty directory exists, and a directory exists
// as long as any key lies below it. What object storage cannot do is refused with a reason: renaming a directory
// (it would be a copy of every object below it, not atomic) and setting a modification time.
//
// Every request is signed, sent and parsed here and served by the store, so a small file's cost is its number of
// requests. A path is looked at with one ListObjectsV2 (the probe: is it an object, a directory, or neither), and the
// probes of one command (the permission check, the quota, the upload itself) share that answer for PROBE_REUSE_MS.
// Directories this session has seen are remembered for storage.s3.dirCacheMs, so an upload does not check its parent
// each time. On a small file STOR then costs the probe and one PutObject, RETR the probe and one GetObject.

export interface S3StorageOptions {
  /** s3://LOCATION/BUCKET/PREFIX */
  root: string;
  clients: S3Clients;
  maxPathBytes: number;
  maxNameBytes: number;
  log?: Logger;
}

/** STOU tries `hint`, `hint.1` … before falling back to a random suffix, as on disk. */
const UNIQUE_NUMBERED_TRIES = 100;
/** What AVBL reports: object storage has no free space to measure (a quota still limits it). */
const UNBOUNDED_SPACE = Number.MAX_SAFE_INTEGER;
/**
 * A probe's answer serves the other probes of the same path for this long: the few milliseconds between the checks of
 * one command. Any change this session makes drops it at once; a change by another node is seen after at most this.
 */
const PROBE_REUSE_MS = 1_000;
/**
 * Keys a probe reads. Names that extend the probed one with a character sorting before "/" ("a.bin.1" for "a.bin")
 * lie between the object and the directory prefix; past this many of them a second request looks for the directory.
 */
const PROBE_KEYS = 100;
/** Directories remembered per session (the oldest is forgotten first). */
const KNOWN_DIRS_MAX = 256;

type Found = S3Object & { mtime: Date };
/** What lies at a path: an object, a directory (a marker or keys below it), both, or neither. */
interface Probe {
  file: Found | null;
  dir: boolean;
}

export function createS3Storage(opts: S3StorageOptions): StorageSession {
  return new S3Storage(opts);
}

class S3Storage implements StorageSession {
  readonly ready = Promise.resolve();
  readonly #o: S3StorageOptions;
  readonly #limits: PathLimits;
  readonly #place: S3Place | null;
  readonly #badPlace: FtpError | null = null;
  /** The latest probe of each path, while it may be reused (PROBE_REUSE_MS). */
  readonly #probes = new Map<string, { probe: Probe; at: number }>();
  /** Directories seen to exist, until when they are taken to (storage.s3.dirCacheMs). */
  readonly #knownDirs = new Map<string, number>();

  constructor(opts: S3StorageOptions) {
    this.#o = opts;
    this.#limits = { maxPathBytes: opts.maxPathBytes, maxNameBytes: opts.maxNameBytes };
    let place: S3Place | null = null;
    try {
      place = parseS3Path(opts.root);
    } catch (err) {
      // A folder with a malformed path fails where it is used, not the whole login.
      this.#badPlace = err as FtpError;
      opts.log?.error({ root: opts.root, event: 's3_folder_invalid' }, 'S3 folder path is not s3://LOCATION/BUCKET/PREFIX');
    }
    this.#place = place;
  }

  get #s3(): { client: S3Client; bucket: string; prefix: string } {
    if (this.#place === null) throw this.#badPlace!;
    try {
      return { client: this.#o.clients.client(this.#place.location), bucket: this.#place.bucket, prefix: this.#place.prefix };
    } catch (err) {
      this.#o.log?.error({ location: this.#place.location, event: 's3_location_unknown' }, 'S3 folder names a location missing from storage.s3.locations');
      throw err;
    }
  }

  #key(path: string): string {
    return this.#s3.prefix + path.slice(1);
  }

  #dirKey(path: string): string {
    return path === '/' ? this.#s3.prefix : `${this.#s3.prefix}${path.slice(1)}/`;
  }

  resolve(cwd: string, clientPath: string): string {
    return resolveVirtualPath(cwd, clientPath, this.#limits);
  }

  /** The object at `path` with its metadata (its SHA-256), or null when there is none. */
  async #head(path: string): Promise<(Found & { metadata: Record<string, string> }) | null> {
    if (path === '/') return null;
    const { client, bucket } = this.#s3;
    try {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: this.#key(path) }));
      return { size: h.ContentLength ?? 0, etag: h.ETag ?? '', mtime: h.LastModified ?? new Date(0), metadata: h.Metadata ?? {} };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw toS3Error(err);
    }
  }

  /** A directory exists when it is the root, has its marker, or any key lies below it. */
  async #isDir(path: string): Promise<boolean> {
    if (path === '/') return true;
    const { client, bucket } = this.#s3;
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: this.#dirKey(path), MaxKeys: 1 }));
      return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
    } catch (err) {
      throw toS3Error(err, 'Directory');
    }
  }

  /**
   * What lies at `path`, in one request: ListObjectsV2 from the path's key with the delimiter "/" lists the object
   * itself first (no other key under that prefix sorts before it) and rolls everything below "path/" into one common
   * prefix, found on the same page unless PROBE_KEYS longer names lie in between.
   */
  async #probe(path: string): Promise<Probe> {
    if (path === '/') return { file: null, dir: true };
    const kept = this.#probes.get(path);
    if (kept !== undefined && performance.now() - kept.at <= PROBE_REUSE_MS) return kept.probe;
    const { client, bucket } = this.#s3;
    const key = this.#key(path);
    const dirKey = `${key}/`;
    let probe: Probe;
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, Delimiter: '/', MaxKeys: PROBE_KEYS }));
      const o = page.Contents?.find((c) => c.Key === key);
      const dir = page.CommonPrefixes?.some((p) => p.Prefix === dirKey) ?? false;
      probe = {
        file: o === undefined ? null : { size: o.Size ?? 0, etag: o.ETag ?? '', mtime: o.LastModified ?? new Date(0) },
        dir: dir || (page.IsTruncated === true && (await this.#isDir(path))),
      };
    } catch (err) {
      throw toS3Error(err);
    }
    if (this.#probes.size >= KNOWN_DIRS_MAX) this.#probes.clear();
    this.#probes.set(path, { probe, at: performance.now() });
    if (probe.dir) this.#sawDir(path);
    else if (probe.file !== null) this.#sawDir(virtualParent(path));
    return probe;
  }

  /** This session changed what lies at `path` (or below it): no probe of it may be reused. */
  #changed(path: string): void {
    this.#probes.delete(path);
    if (this.#probes.size === 0) return;
    const below = `${path}/`;
    for (const p of this.#probes.keys()) if (p.startsWith(below)) this.#probes.delete(p);
  }

  #sawDir(path: string): void {
    const ttl = this.#o.clients.settings.dirCacheMs;
    if (path === '/' || ttl === 0) return;
    this.#knownDirs.delete(path);
    if (this.#knownDirs.size >= KNOWN_DIRS_MAX) this.#knownDirs.delete(this.#knownDirs.keys().next().value!);
    this.#knownDirs.set(path, performance.now() + ttl);
  }

  #forgetDir(path: string): void {
    const below = `${path}/`;
    for (const p of this.#knownDirs.keys()) if (p === path || p.startsWith(below)) this.#knownDirs.delete(p);
  }

  /**
   * 550 unless `path` is a directory. One seen within storage.s3.dirCacheMs is not asked about again: if another
   * node removed it meanwhile, an upload into it brings it back (a directory exists while a key lies below it).
   */
  async #requireDir(path: string): Promise<void> {
    if (path === '/') return;
    const until = this.#knownDirs.get(path);
    if (until !== undefined && performance.now() < until) return;
    if (!(await this.#isDir(path))) throw new FtpError(550, 'Directory not found', { reason: 'not_found' });
    this.#sawDir(path);
  }

  /** The object at `path`; 550 "Is a directory" or "not found" otherwise. */
  async #requireFile(path: string): Promise<Found> {
    const probe = await this.#probe(path);
    if (probe.file !== null) return probe.file;
    if (probe.dir) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    throw new FtpError(550, 'File not found', { reason: 'not_found' });
  }

  async stat(path: string): Promise<FileInfo> {
    const name = virtualBaseName(path);
    const { file, dir } = await this.#probe(path);
    if (file !== null) return { name, type: 'file', size: file.size, mtime: file.mtime, mode: FILE_MODE, unique: objectUnique(this.#s3.bucket, this.#key(path)) };
    if (dir) return { name, type: 'dir', size: 0, mtime: new Date(), mode: DIR_MODE, unique: objectUnique(this.#s3.bucket, this.#dirKey(path)) };
    throw new FtpError(550, 'File not found', { reason: 'not_found' });
  }

  async openListing(path: string): Promise<Listing> {
    const { client, bucket } = this.#s3;
    const s3 = this.#o.clients.settings;
    const { listing, empty } = await S3Listing.open({ client, bucket, dirKey: this.#dirKey(path), pageSize: s3.listPageSize, maxNameBytes: this.#limits.maxNameBytes, now: new Date(), log: this.#o.log });
    if (empty && path !== '/') {
      await listing.close();
      this.#forgetDir(path);
      if ((await this.#probe(path)).file !== null) throw new FtpError(550, 'Not a directory', { reason: 'not_dir' });
      throw new FtpError(550, 'Directory not found', { reason: 'not_found' });
    }
    this.#sawDir(path);
    return listing;
  }

  async list(path: string): Promise<FileInfo[]> {
    const infos: FileInfo[] = [];
    for await (const info of await this.openListing(path)) infos.push(info);
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async mkdir(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Directory already exists', { reason: 'exists' });
    const [, there] = await Promise.all([this.#requireDir(virtualParent(path)), this.#probe(path)]);
    if (there.file !== null || there.dir) throw new FtpError(550, 'Directory already exists', { reason: 'exists' });
    const { client, bucket } = this.#s3;
    this.#changed(path);
    try {
      // If-None-Match: a concurrent MKD of the same name gets "exists", as mkdir(2) would give EEXIST.
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: this.#dirKey(path), Body: '', ContentLength: 0, IfNoneMatch: '*' }));
    } catch (err) {
      if (s3Status(err) === 412) throw new FtpError(550, 'Directory already exists', { reason: 'exists', cause: err });
      throw toS3Error(err, 'Directory');
    }
    this.#sawDir(path);
  }

  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Cannot remove the home directory', { reason: 'home_dir' });
    const { client, bucket } = this.#s3;
    const dirKey = this.#dirKey(path);
    this.#changed(path);
    this.#forgetDir(path);
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: dirKey, MaxKeys: 2 }));
      const keys = (page.Contents ?? []).map((o) => o.Key);
      if (keys.length === 0) {
        if ((await this.#probe(path)).file !== null) throw new FtpError(550, 'Not a directory', { reason: 'not_dir' });
        throw new FtpError(550, 'Directory not found', { reason: 'not_found' });
      }
      if (keys.some((k) => k !== dirKey)) throw new FtpError(550, 'Directory not empty', { reason: 'exists' });
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: dirKey }));
    } catch (err) {
      throw toS3Error(err, 'Directory');
    }
  }

  async unlink(path: string): Promise<void> {
    if (path === '/') throw new FtpError(550, 'Cannot remove the home directory', { reason: 'home_dir' });
    await this.#requireFile(path);
    const { client, bucket } = this.#s3;
    this.#changed(path);
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.#key(path) }));
    } catch (err) {
      throw toS3Error(err);
    }
  }

  /**
   * Files only, as a copy inside the store then a delete of the source (S3 has no rename). Directories are refused:
   * moving one means copying every object below it, which is neither atomic nor bounded in time.
   */
  async rename(from: string, to: string): Promise<void> {
    if (from === '/' || to === '/') throw new FtpError(550, 'Cannot rename the home directory', { reason: 'home_dir' });
    const source = await this.#head(from);
    if (source === null) {
      if (await this.#isDir(from)) throw new FtpError(550, 'Cannot rename a directory on object storage: move its files one by one', { reason: 's3_rename_dir' });
      throw new FtpError(550, 'File not found', { reason: 'not_found' });
    }
    await this.#requireDir(virtualParent(to));
    if (await this.#isDir(to)) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    if (from === to) return;
    const { client, bucket } = this.#s3;
    this.#changed(from);
    this.#changed(to);
    try {
      await copyObject(client, { bucket, from: this.#key(from), to: this.#key(to), size: source.size, etag: source.etag, metadata: source.metadata });
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.#key(from) }));
    } catch (err) {
      throw toS3Error(err);
    }
  }

  async setMtime(path: string, _mtime: Date): Promise<void> {
    await this.#requireFile(path);
    // S3 sets LastModified itself when an object is written; no request changes it.
    throw new FtpError(501, 'Modification time cannot be set on object storage', { reason: 'mtime_unsupported' });
  }

  async openRead(path: string, offset: number, _chunkBytes: number): Promise<Readable> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest' });
    if (path === '/') throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    const { client, bucket } = this.#s3;
    try {
      // REST n: a ranged GET from byte n, so a resumed download reads only what is missing.
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: this.#key(path), ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }));
      return out.Body as Readable;
    } catch (err) {
      if (s3Status(err) === 416) {
        // As on disk: REST at the end sends zero bytes, beyond the end is refused with 554.
        const head = await this.#requireFile(path);
        if (offset === head.size) return Readable.from([]);
        throw new FtpError(554, INVALID_REST, { reason: 'invalid_rest', cause: err });
      }
      if (isNotFound(err)) {
        this.#changed(path);
        await this.#requireFile(path);
      }
      throw toS3Error(err);
    }
  }

  async openUpload(path: string, mode: UploadMode, chunkBytes: number, options?: OpenUploadOptions): Promise<Upload> {
    if (path === '/') throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    const parent = virtualParent(path);
    // Usually both answered already: the probe by the command's own checks, the parent by the cache of seen directories.
    const [, there] = await Promise.all([this.#requireDir(parent), this.#probe(path)]);
    if (there.file === null && there.dir) throw new FtpError(550, 'Is a directory', { reason: 'is_dir' });
    const { client, bucket } = this.#s3;
    const s3 = this.#o.clients.settings;
    this.#changed(path);
    const upload = await openS3Upload({ client, bucket, key: this.#key(path), existing: there.file }, mode, { partBytes: Math.max(s3.partBytes, chunkBytes), partConcurrency: s3.partConcurrency, spool: options?.mayCheck === true, log: this.#o.log });
    return {
      stream: upload.stream,
      commit: async (options) => {
        try {
          const done = await upload.commit(options);
          // The object now lies in its directory: that directory exists for as long as the object does.
          this.#sawDir(parent);
          return done;
        } finally {
          this.#changed(path);
        }
      },
      abort: (keepPartial) => upload.abort(keepPartial),
    };
  }

  async uniqueName(dir: string, hint: string): Promise<string> {
    await this.#requireDir(dir);
    const name = hint.slice(hint.lastIndexOf('/') + 1);
    const base = name === '' || name === '.' || name === '..' || nameProblem(name, this.#limits.maxNameBytes) !== null ? 'file' : name;
    const at = (n: string) => (dir === '/' ? `/${n}` : `${dir}/${n}`);
    for (let i = 0; i <= UNIQUE_NUMBERED_TRIES; i++) {
      const candidate = i === 0 ? base : `${base}.${i}`;
      if (Buffer.byteLength(candidate) > this.#limits.maxNameBytes) break;
      const there = await this.#probe(at(candidate));
      if (there.file === null && !there.dir) return candidate;
    }
    return `ftpsd-${randomBytes(8).toString('hex')}`;
  }

  /** From the object's metadata, written while it was uploaded; read and hashed only for objects written otherwise. */
  async sha256(path: string): Promise<string> {
    const head = await this.#head(path);
    if (head === null) {
      this.#changed(path);
      await this.#requireFile(path);
      throw new FtpError(550, 'File not found', { reason: 'not_found' });
    }
    const kept = head.metadata[SHA256_META];
    if (kept !== undefined && /^[0-9a-f]{64}$/.test(kept)) return kept;
    const { client, bucket } = this.#s3;
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: this.#key(path), IfMatch: head.etag }));
      const hash = createHash('sha256');
      for await (const chunk of out.Body as Readable) hash.update(chunk as Buffer);
      return hash.digest('hex');
    } catch (err) {
      throw toS3Error(err);
    }
  }

  async spaceAvailable(path: string): Promise<number> {
    await this.#requireDir(path);
    return UNBOUNDED_SPACE;
  }
}
