import { createHmac, timingSafeEqual } from 'node:crypto';

// The webhook signature, as receivers verify it (docs/events.md): Ftpsd-Timestamp carries the Unix time of the
// attempt in seconds, Ftpsd-Signature "v1=" and the hex HMAC-SHA256, keyed with the endpoint's secret, of
// "<timestamp>.<signed text>". The signed text is the JSON body; for a pre-commit check, whose body is the file
// itself, it is the JSON event in the Ftpsd-Event header (base64), whose sha256 then vouches for the body. The
// timestamp lets a receiver refuse old messages replayed to it.

export const SIGNATURE_HEADER = 'ftpsd-signature';
export const TIMESTAMP_HEADER = 'ftpsd-timestamp';

export function sign(secret: string, timestamp: number, signed: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(signed);
  return `v1=${mac.digest('hex')}`;
}

/** The receiver's side: true when `header` is the signature of `signed` at `timestamp` and the time is recent. */
export function verify(secret: string, header: string, timestamp: number, signed: string | Buffer, toleranceSeconds = 300, now = Date.now()): boolean {
  if (!Number.isSafeInteger(timestamp) || Math.abs(now / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, timestamp, signed));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
