/**
 * The one error type that carries an FTP reply. Handlers throw it; the session writes `code text` and logs the cause.
 * Any other error reaching the session becomes 451 with the details only in the log, never on the wire.
 */
export class FtpError extends Error {
  readonly code: number;
  /** Stable name for logs and metrics, e.g. 'path_outside_home'. */
  readonly reason: string;

  constructor(code: number, text: string, options: { reason?: string; cause?: unknown } = {}) {
    super(text, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FtpError';
    this.code = code;
    this.reason = options.reason ?? `ftp_${code}`;
  }
}

/** Maps an error from the file system to the reply RFC 959 intends for it. */
export function fsErrorToFtp(err: unknown, what = 'File'): FtpError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new FtpError(550, `${what} not found`, { reason: 'not_found', cause: err });
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new FtpError(550, code === 'EEXIST' ? `${what} already exists` : 'Directory not empty', { reason: 'exists', cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new FtpError(550, 'Permission denied', { reason: 'fs_permission', cause: err });
    case 'ENOTDIR':
      return new FtpError(550, 'Not a directory', { reason: 'not_dir', cause: err });
    case 'EISDIR':
      return new FtpError(550, 'Is a directory', { reason: 'is_dir', cause: err });
    case 'ENOSPC':
    case 'EDQUOT':
      return new FtpError(452, 'Insufficient storage space', { reason: 'no_space', cause: err });
    case 'ENAMETOOLONG':
      return new FtpError(553, 'File name too long', { reason: 'name_too_long', cause: err });
    default:
      return new FtpError(451, 'Local error in processing', { reason: 'fs_error', cause: err });
  }
}
