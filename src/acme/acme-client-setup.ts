import { Agent } from 'node:https';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import type { Config } from '../config/schema.js';
import { AcmeError } from './acme-error.js';

/** Runtime settings of acme-client's axios instance that its type declarations leave out. */
interface AcmeSettings {
  retryMaxAttempts: number;
  /** Seconds, multiplied by the attempt number. */
  retryDefaultDelay: number;
}

let lastTransportError: string | null = null;

/**
 * acme-client talks to the CA through one axios instance shared by the whole process, so these settings are
 * process-wide: one AcmeManager (or one `cert renew`) per process.
 */
export async function configureAcmeClient(acmeConfig: Config['acme'], caFile: string | null, debug: (msg: string) => void): Promise<void> {
  const defaults = acme.axios.defaults as typeof acme.axios.defaults & { acmeSettings: AcmeSettings };
  defaults.acmeSettings.retryMaxAttempts = acmeConfig.requestRetries;
  defaults.acmeSettings.retryDefaultDelay = acmeConfig.requestRetryDelayMs / 1000;
  if (caFile !== null) {
    let caPem: string;
    try {
      caPem = await readFile(caFile, 'utf8');
    } catch (err) {
      throw new AcmeError('config', `acme.caFile cannot be read: ${(err as Error).message}`, { cause: err });
    }
    // An extra CA, not a replacement: a public CA stays trusted next to a company or test CA.
    defaults.httpsAgent = new Agent({ ca: [...rootCertificates, caPem], keepAlive: true });
  }
  acme.setLogger((msg) => {
    // After its last retry of a network error acme-client throws an unrelated TypeError; the real cause
    // (ECONNREFUSED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) only shows in its log line, so remember it.
    const m = /^Caught (\S+), retry attempt \d+\/\d+ to URL (\S+)/.exec(msg);
    if (m !== null) lastTransportError = `${m[1]} from ${m[2]}`;
    debug(msg);
  });
}

/** Turns what acme-client threw into an AcmeError carrying the CA's detail, or the network cause. */
export function toAcmeError(err: unknown, fallback: 'ca_rejected' | 'challenge_failed' = 'ca_rejected'): AcmeError {
  if (err instanceof AcmeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof TypeError && lastTransportError !== null) {
    return new AcmeError('ca_unreachable', `cannot reach the ACME server: ${lastTransportError}`, { cause: err });
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new AcmeError('ca_unreachable', `cannot reach the ACME server: ${message}`, { cause: err });
  }
  return new AcmeError(fallback, message, { cause: err });
}

/** Forget the last network failure so an old one is not blamed for a new error. */
export function resetTransportError(): void {
  lastTransportError = null;
}
