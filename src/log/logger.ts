import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Secrets are redacted once, here, whatever component logs them. */
export const REDACT_PATHS = ['password', '*.password', 'pass', '*.pass', 'hmacKey', '*.hmacKey', 'key', '*.key', 'args.password', 'secretAccessKey', '*.secretAccessKey'];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'ftpsd' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
