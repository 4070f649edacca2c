import type { X509Certificate } from 'node:crypto';

const DAY_MS = 86_400_000;
/** setTimeout fires at once for any delay above 2^31-1 ms (about 24.8 days); longer waits are re-armed. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RenewalPolicy {
  renewBeforeDays: number;
  /** 0 disables the fraction rule. */
  renewBeforeFraction: number;
}

export interface RenewalWindow {
  notBefore: number;
  notAfter: number;
  /** When renewal should happen (epoch ms). */
  renewAt: number;
  /** True when the configured window was longer than the certificate's whole lifetime and was shortened. */
  clamped: boolean;
}

/**
 * Renew `renewBeforeDays` before expiry, or when `renewBeforeFraction` of the lifetime is left, whichever comes
 * first. A window as long as the lifetime would renew a fresh certificate at once, again and again; then renew
 * when a third of the lifetime is left instead (90-day certificates are renewed 30 days out by the same rule).
 */
export function renewalWindow(leaf: Pick<X509Certificate, 'validFrom' | 'validTo'>, policy: RenewalPolicy): RenewalWindow {
  const notBefore = new Date(leaf.validFrom).getTime();
  const notAfter = new Date(leaf.validTo).getTime();
  const lifetime = Math.max(0, notAfter - notBefore);
  const before = Math.max(policy.renewBeforeDays * DAY_MS, policy.renewBeforeFraction * lifetime);
  const clamped = before >= lifetime;
  const renewAt = notAfter - (clamped ? lifetime / 3 : before);
  return { notBefore, notAfter, renewAt: Math.round(renewAt), clamped };
}

/** The next wake-up: never later than the check interval and never beyond what setTimeout can hold. */
export function timerDelay(targetMs: number, now: number, checkIntervalMs: number): number {
  return Math.max(0, Math.min(targetMs - now, checkIntervalMs, MAX_TIMER_MS));
}

/**
 * Exponential backoff between `minMs` and `maxMs` with "equal jitter" (half fixed, half random, never below
 * `minMs`), so that many servers failing together against one CA do not retry in step. `failures` counts from 1.
 */
export function retryDelay(failures: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.max(minMs, maxMs);
  const exp = Math.min(ceiling, minMs * 2 ** Math.min(Math.max(0, failures - 1), 52));
  return Math.round(Math.max(minMs, exp / 2 + random() * (exp / 2)));
}
