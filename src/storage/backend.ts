import type { Readable, Writable } from 'node:stream';

/**
 * What the FTP commands need from storage. Paths given to a StorageSession are virtual: absolute POSIX paths inside
 * the user's home ("/" is the home), already normalised by `resolve`. The local-disk backend is the only one today;
 * the interface keeps room for object storage.
 */
/**
 * Set by a backend on the stream openRead returns when that stream reads a local file: its descriptor and first byte,
 * so that a binary download can read into two buffers of its own (data/transfer.ts sendFileToClient) instead of a
 * fresh buffer per chunk for the garbage collector. The stream still owns the descriptor and closes it when destroyed.
 */
export const FILE_RANGE = Symbol('fileRange');
export interface FileRange {
  fd: number;
  start: number;
  /** The file's size when opened; reading goes on to the end of the file as it is then. */
  size: number;
}

export type EntryType = 'file' | 'dir' | 'link' | 'other';

export interface FileInfo {
  /** Last path segment (for "/" itself: "/"). */
  name: string;
  type: EntryType;
  size: number;
  mtime: Date;
  /** POSIX permission bits, for LIST. */
  mode: number;
  /** RFC 3659 "unique" fact: stable for the same file (device and inode on local disk). */
  unique: string;
}

export type UploadMode =
  /** STOR: replace the target. */
  | { kind: 'replace' }
  /** APPE: append to the target (created when missing). */
  | { kind: 'append' }
  /** REST n + STOR: continue a partial upload (kept under its hidden name) or the stored file at byte offset. */
  | { kind: 'resume'; offset: number };

export interface UploadResult {
  bytes: number;
  /** Final size of the file. */
  size: number;
  /** SHA-256 (hex) of the whole stored file. */
  sha256: string;
  /** Where the file now lies (a local path), for event payloads. */
  storagePath?: string;
  /** True when the commit's journal (its event) was written in the same store transaction as its quota count. */
  journaled?: boolean;
}

/** The complete bytes of an upload, not yet visible at the target name: what a pre-commit check looks at. */
export interface StagedUpload {
  /** A local path other programs (a virus scanner) can read it at. */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Reads it from the verified directory. */
  open(): Readable;
  /** Moves it out of the tree (quarantine); the commit then has nothing left to publish. */
  moveTo(dest: string): Promise<void>;
}

/** A store write that belongs to a commit (the upload's event): done in the same transaction as its quota count. */
export type CommitJournal = (trx: unknown, result: UploadResult) => Promise<void>;

/** What the caller knows about an upload when it opens it. */
export interface OpenUploadOptions {
  /**
   * A pre-commit check may run at commit (a rule on upload_check matches the user and path). A backend that cannot
   * read back what it received before commit (S3: the parts of a multipart upload) keeps a private local copy for it.
   */
  mayCheck?: boolean;
}

export interface CommitOptions {
  /** Runs on the complete bytes before they become visible; a throw refuses the upload and nothing is stored. */
  check?(staged: StagedUpload): Promise<void>;
  journal?: CommitJournal;
}

/** An upload in progress. Nothing is visible at the target name until `commit` succeeds. */
export interface Upload {
  /** Receives the file's bytes (for append/resume: only the new bytes). */
  readonly stream: Writable;
  /**
   * Call once the data connection ended cleanly and `stream` finished: makes the file visible atomically, after the
   * pre-commit check (if any) accepted it.
   */
  commit(options?: CommitOptions): Promise<UploadResult>;
  /**
   * Called for an aborted or truncated transfer: the target keeps its previous content. With keepPartial the bytes
   * received so far stay under the hidden partial name so `REST` can continue them.
   */
  abort(keepPartial: boolean): Promise<void>;
  /**
   * What the upload replaces, as found when it was opened: the size of the file already there, or null when the
   * name was free. Left undefined by a backend that does not look (the caller then asks `stat`).
   */
  readonly replaced?: { size: number } | null;
}

/**
 * A directory open for listing, read once as it is iterated (in bounded memory, whatever its size). Sorted by name
 * up to storage.listingSortMaxEntries entries, in directory order beyond. Without upload temporaries.
 */
export interface Listing extends AsyncIterable<FileInfo> {
  /** The names alone, without looking at each entry (NLST): read instead of iterating the listing itself. */
  names(): AsyncIterable<string>;
  /** Releases the directory when it is not iterated to the end (iterating or breaking out releases it by itself). */
  close(): Promise<void>;
}

export interface StorageSession {
  /** Settles once the home exists; rejects with FtpError 550 when it cannot be created (the login is refused). */
  readonly ready: Promise<void>;
  /** Normalises a client path against the current directory; throws FtpError 553 for NUL, over-long names/paths. */
  resolve(cwd: string, clientPath: string): string;
  stat(path: string): Promise<FileInfo>;
  /** Opens a directory for listing; a missing path, a file or a path outside the home is refused here (550). */
  openListing(path: string): Promise<Listing>;
  /** Every entry of a directory at once, sorted by name, without upload temporaries: for small directories only. */
  list(path: string): Promise<FileInfo[]>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Refused with 501 (and the time left as it was) when the file system cannot store `mtime`. */
  setMtime(path: string, mtime: Date): Promise<void>;
  /** Readable of the file from `offset`, reading `chunkBytes` at a time. */
  openRead(path: string, offset: number, chunkBytes: number): Promise<Readable>;
  openUpload(path: string, mode: UploadMode, chunkBytes: number, options?: OpenUploadOptions): Promise<Upload>;
  /** A name in `dir` that does not exist yet, for STOU. */
  uniqueName(dir: string, hint: string): Promise<string>;
  /** SHA-256 (hex) of a stored file, for HASH. */
  sha256(path: string): Promise<string>;
  /**
   * Bytes this user may still store at `path` (an existing directory), for AVBL. The one place that answers it: the
   * local disk reports the free space of the file system; a per-partner quota would answer what is left of it.
   */
  spaceAvailable(path: string): Promise<number>;
}
