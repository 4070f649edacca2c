import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Usage } from '../store/quota-repo.js';
import type { S3Clients } from './s3-clients.js';
import { toS3Error } from './s3-errors.js';
import { parseS3Path } from './s3-place.js';

/** Bytes and files stored under an S3 folder, as quota counts them: every object below its prefix but the markers. */
export async function countS3Usage(clients: S3Clients, root: string): Promise<Usage> {
  const place = parseS3Path(root);
  const client = clients.client(place.location);
  const usage = { bytes: 0, files: 0 };
  let token: string | undefined;
  try {
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: place.bucket, Prefix: place.prefix, MaxKeys: clients.settings.listPageSize, ...(token === undefined ? {} : { ContinuationToken: token }) }));
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || o.Key.endsWith('/')) continue;
        usage.bytes += o.Size ?? 0;
        usage.files++;
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  } catch (err) {
    throw toS3Error(err, 'Folder');
  }
  return usage;
}
