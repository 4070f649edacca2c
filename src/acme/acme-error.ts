/** Stable reasons for logs, metrics and the CLI's exit messages. */
export type AcmeErrorReason =
  | 'config'
  | 'ca_unreachable'
  | 'ca_rejected'
  | 'challenge_failed'
  | 'no_supported_challenge'
  | 'responder_failed'
  | 'hook_failed'
  | 'hook_timeout'
  | 'timeout'
  | 'store'
  | 'busy';

export class AcmeError extends Error {
  readonly reason: AcmeErrorReason;

  constructor(reason: AcmeErrorReason, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AcmeError';
    this.reason = reason;
  }
}

/** One line for the log: the ACME problem document's detail (RFC 8555 section 6.7) when the CA sent one. */
export function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof AcmeError) return err.message; // written to stand alone; its cause is often noise
  const cause = err.cause instanceof Error ? err.cause.message : '';
  return cause === '' || err.message.includes(cause) ? err.message : `${err.message}: ${cause}`;
}

export function errorReason(err: unknown): AcmeErrorReason | 'unknown' {
  return err instanceof AcmeError ? err.reason : 'unknown';
}
