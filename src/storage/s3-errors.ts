import { FtpError } from '../errors.js';

// S3 answers mapped to the replies RFC 959 intends, as fsErrorToFtp does for the disk. The store's own words never
// reach the client: the cause stays on the error for the log.

interface S3Failure {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

export function s3Status(err: unknown): number | undefined {
  return (err as S3Failure | undefined)?.$metadata?.httpStatusCode;
}

export function isNotFound(err: unknown): boolean {
  const name = (err as S3Failure | undefined)?.name;
  return s3Status(err) === 404 && name !== 'NoSuchBucket' || name === 'NoSuchKey' || name === 'NotFound';
}

export function toS3Error(err: unknown, what = 'File'): FtpError {
  if (err instanceof FtpError) return err;
  const name = (err as S3Failure | undefined)?.name;
  const status = s3Status(err);
  if (name === 'NoSuchBucket') return new FtpError(550, 'Folder unavailable', { reason: 's3_no_bucket', cause: err });
  if (isNotFound(err)) return new FtpError(550, `${what} not found`, { reason: 'not_found', cause: err });
  if (status === 403) return new FtpError(550, 'Permission denied', { reason: 's3_denied', cause: err });
  if (name === 'KeyTooLongError') return new FtpError(553, 'Path too long', { reason: 'path_too_long', cause: err });
  if (name === 'EntityTooLarge') return new FtpError(552, 'File too large for the store', { reason: 's3_too_large', cause: err });
  // Timeouts, refused connections, 5xx after the SDK's retries: the client may try again later (RFC 959 451).
  return new FtpError(451, 'Storage temporarily unavailable', { reason: 's3_error', cause: err });
}
