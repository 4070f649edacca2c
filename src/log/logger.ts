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
    // Synchronous, as pino's default and Node's own stdout on Linux: one write(2) per line on the event loop costs a
    // few microseconds, where an asynchronous line took a trip through the thread pool (two thread switches and more
    // CPU than the write), and no line is lost when the process dies. A consumer that stops reading standard output
    // holds the server up, as it would any synchronous logger: run under journald, a container runtime or `>> file`.
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
