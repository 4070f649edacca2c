import { FtpError } from '../errors.js';

// Where an S3-backed folder lives, written as its path in the partners file: s3://LOCATION/BUCKET/PREFIX. LOCATION
// names an entry of storage.s3.locations (endpoint and keys stay in the configuration file, out of the store);
// BUCKET and PREFIX are the folder's own. "{user}" may appear in the prefix like in a local path.

export const S3_SCHEME = 's3://';

export interface S3Place {
  /** Name of the storage.s3.locations entry. */
  location: string;
  bucket: string;
  /** Key prefix of the folder's root: "" or ending with "/". */
  prefix: string;
}

export function isS3Path(path: string): boolean {
  return path.startsWith(S3_SCHEME);
}

/** s3://LOCATION/BUCKET[/PREFIX] → its parts; a malformed path is refused (550: the folder cannot be used). */
export function parseS3Path(path: string): S3Place {
  const [location = '', bucket = '', ...rest] = path.slice(S3_SCHEME.length).split('/');
  // S3 bucket names: 3-63 lower-case letters, digits, dots and dashes.
  if (!isS3Path(path) || location === '' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new FtpError(550, 'Folder unavailable', { reason: 's3_bad_location' });
  }
  const segments = rest.filter((s) => s !== '');
  return { location, bucket, prefix: segments.length === 0 ? '' : `${segments.join('/')}/` };
}

/** The folder's root written back as a path (for logs, ledger marks and quota scopes). */
export function formatS3Place(p: S3Place): string {
  return `${S3_SCHEME}${p.location}/${p.bucket}/${p.prefix}`.replace(/\/$/, '');
}

/** A location's root joined with a virtual path below it, without path.join folding the scheme's "//". */
export function joinLocation(root: string, rel: string): string {
  return `${root.replace(/\/+$/, '')}/${rel.replace(/^\/+/, '')}`;
}
