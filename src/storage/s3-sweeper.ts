import { AbortMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { Logger } from '../log/logger.js';
import type { S3Clients } from './s3-clients.js';
import { parseS3Path } from './s3-place.js';

// A node that dies mid-upload leaves its multipart upload behind: invisible as an object, but its parts take space
// (and cost money on AWS) until aborted. Every storage.s3.sweepIntervalMs, each S3 folder's prefix is searched for
// multipart uploads started more than storage.s3.staleUploadAgeMs ago, which no running transfer can still own
// (set it above the longest upload you expect), and they are aborted.

export interface SweptUpload {
  root: string;
  key: string;
  initiated: Date;
}

/** Aborts the stale multipart uploads under each root (s3://LOCATION/BUCKET/PREFIX); returns what it aborted. */
export async function sweepStaleUploads(clients: S3Clients, roots: readonly string[], maxAgeMs: number, now = Date.now()): Promise<SweptUpload[]> {
  const swept: SweptUpload[] = [];
  for (const root of new Set(roots)) {
    const place = parseS3Path(root);
    const client = clients.client(place.location);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: place.bucket, Prefix: place.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined || u.Initiated === undefined) continue;
        if (now - u.Initiated.getTime() < maxAgeMs) continue;
        try {
          await client.send(new AbortMultipartUploadCommand({ Bucket: place.bucket, Key: u.Key, UploadId: u.UploadId }));
          swept.push({ root, key: u.Key, initiated: u.Initiated });
        } catch (err) {
          // Completed or aborted meanwhile by its owner: nothing left to do.
          if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
        }
      }
      keyMarker = page.IsTruncated === true ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated === true ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
  }
  return swept;
}

/** Runs the sweep every storage.s3.sweepIntervalMs over the S3 folders the store names, one run at a time. */
export class S3Sweeper {
  readonly #o: { clients: S3Clients; roots: () => Promise<string[]>; log: Logger };
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<SweptUpload[]> | null = null;
  #closed = false;

  constructor(opts: { clients: S3Clients; roots: () => Promise<string[]>; log: Logger }) {
    this.#o = opts;
  }

  start(): void {
    // Re-armed after each run, so a changed interval applies from the next run on; 0 switches the sweeper off.
    const arm = () => {
      if (this.#closed) return;
      const ms = this.#o.clients.settings.sweepIntervalMs;
      this.#timer = setTimeout(() => void this.run().finally(arm), ms === 0 ? 60_000 : ms);
      this.#timer.unref();
    };
    arm();
  }

  run(): Promise<SweptUpload[]> {
    this.#running ??= this.#run().finally(() => (this.#running = null));
    return this.#running;
  }

  async #run(): Promise<SweptUpload[]> {
    const s = this.#o.clients.settings;
    if (s.sweepIntervalMs === 0 || s.locations.length === 0) return [];
    try {
      const swept = await sweepStaleUploads(this.#o.clients, await this.#o.roots(), s.staleUploadAgeMs);
      for (const u of swept) this.#o.log.info({ event: 's3_upload_swept', root: u.root, object: u.key, initiated: u.initiated.toISOString() }, 'stale multipart upload aborted');
      return swept;
    } catch (err) {
      this.#o.log.warn({ err, event: 's3_sweep_failed' }, 'S3 multipart sweep failed');
      return [];
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
