import { ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { FileInfo, Listing } from './backend.js';
import { toS3Error } from './s3-errors.js';
import { nameProblem } from './virtual-path.js';

// A directory of an S3 folder, listed with ListObjectsV2 and the delimiter "/": one page of at most
// storage.s3.listPageSize keys at a time, each page turned into entries as it is read, so a listing of any size holds
// one page in memory. S3 returns keys in byte order and a page covers one range of them, so merging its common
// prefixes (directories) and its objects (files) keeps the whole listing sorted by name.

export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;

export interface S3ListingOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix of the directory: "" for the folder's root of an unprefixed bucket, else ending with "/". */
  dirKey: string;
  pageSize: number;
  maxNameBytes: number;
  /** Shown as the time of directories, which S3 does not keep: the listing's own time. */
  now: Date;
  log?: Logger | undefined;
}

type Page = Pick<ListObjectsV2CommandOutput, 'Contents' | 'CommonPrefixes' | 'NextContinuationToken' | 'IsTruncated'>;

export function objectUnique(bucket: string, key: string): string {
  return `s3${createHash('sha1').update(`${bucket}/${key}`).digest('hex').slice(0, 16)}`;
}

export class S3Listing implements Listing {
  readonly #o: S3ListingOptions;
  /** The first page, read when the listing was opened (to refuse a missing directory at once). */
  #first: Page | null;
  readonly #abort = new AbortController();

  private constructor(opts: S3ListingOptions, first: Page) {
    this.#o = opts;
    this.#first = first;
  }

  /** Reads the first page; an empty one means the directory does not exist (its marker would be listed). */
  static async open(opts: S3ListingOptions): Promise<{ listing: S3Listing; empty: boolean }> {
    const first = await listPage(opts, undefined);
    const empty = (first.Contents?.length ?? 0) === 0 && (first.CommonPrefixes?.length ?? 0) === 0;
    return { listing: new S3Listing(opts, first), empty };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FileInfo> {
    let page: Page | null = this.#first ?? (await listPage(this.#o, undefined, this.#abort.signal));
    this.#first = null;
    while (page !== null) {
      yield* this.#entries(page);
      page = page.IsTruncated === true && page.NextContinuationToken !== undefined ? await listPage(this.#o, page.NextContinuationToken, this.#abort.signal) : null;
    }
  }

  async *names(): AsyncIterable<string> {
    for await (const e of this) yield e.name;
  }

  async close(): Promise<void> {
    this.#first = null;
    this.#abort.abort();
  }

  *#entries(page: Page): Generator<FileInfo> {
    const { bucket, dirKey, maxNameBytes, now } = this.#o;
    const dirs = (page.CommonPrefixes ?? []).map((p) => p.Prefix ?? '').filter((k) => k.length > dirKey.length);
    // The directory's own marker ("dir/") is listed under its prefix: not an entry.
    const files = (page.Contents ?? []).filter((o) => o.Key !== undefined && o.Key !== dirKey);
    let i = 0;
    let j = 0;
    while (i < dirs.length || j < files.length) {
      const takeDir = j >= files.length || (i < dirs.length && dirs[i]! < files[j]!.Key!);
      let info: FileInfo;
      if (takeDir) {
        const key = dirs[i++]!;
        info = { name: key.slice(dirKey.length, -1), type: 'dir', size: 0, mtime: now, mode: DIR_MODE, unique: objectUnique(bucket, key) };
      } else {
        const o = files[j++]!;
        info = { name: o.Key!.slice(dirKey.length), type: 'file', size: o.Size ?? 0, mtime: o.LastModified ?? now, mode: FILE_MODE, unique: objectUnique(bucket, o.Key!) };
      }
      // Keys written by other S3 clients may hold names no FTP client could address again ("a//b", CR, LF).
      if (info.name === '' || info.name.includes('/') || nameProblem(info.name, maxNameBytes) !== null) {
        this.#o.log?.debug({ object: dirKey + info.name }, 'S3 key not listed: not a usable file name');
        continue;
      }
      yield info;
    }
  }
}

async function listPage(o: S3ListingOptions, token: string | undefined, abortSignal?: AbortSignal): Promise<Page> {
  try {
    return await o.client.send(
      new ListObjectsV2Command({ Bucket: o.bucket, Prefix: o.dirKey, Delimiter: '/', MaxKeys: o.pageSize, ...(token === undefined ? {} : { ContinuationToken: token }) }),
      abortSignal === undefined ? {} : { abortSignal },
    );
  } catch (err) {
    throw toS3Error(err, 'Directory');
  }
}
