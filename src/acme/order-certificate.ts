import acme, { type Authorization, type Client } from 'acme-client';
import type { Logger } from '../log/logger.js';
import { AcmeError, errorDetail } from './acme-error.js';
import { toAcmeError } from './acme-client-setup.js';
import type { ChallengeInfo, ChallengeResponder, ChallengeType } from './challenge-responder.js';

/** RFC 5280 upper bound for a commonName; longer names go into subjectAltName only. */
const MAX_COMMON_NAME_CHARS = 64;

export interface OrderRequest {
  client: Client;
  domains: readonly string[];
  /** Private key for the new certificate (PEM). */
  keyPem: Buffer;
  /** Responders in the order of preference (acme.challenges). */
  responders: readonly ChallengeResponder[];
  email: string;
  termsAgreed: boolean;
  timeoutMs: number;
  log: Logger;
}

export interface OrderResult {
  /** Leaf first, then intermediates. */
  certPem: string;
  orderUrl: string;
}

/**
 * One RFC 8555 issuance (section 7.4): account, newOrder, one challenge per pending authorization, finalize, download.
 * Responders listen only for the duration of this call; each challenge's `remove` runs in `finally` once all
 * authorizations have settled, even when a challenge or the order fails. The whole order is bounded by `timeoutMs`.
 */
export async function orderCertificate(req: OrderRequest): Promise<OrderResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new AcmeError('timeout', `order did not complete within ${req.timeoutMs} ms`)), req.timeoutMs);
  });
  try {
    await Promise.all(req.responders.map((r) => r.start()));
    return await Promise.race([runOrder(req), deadline]);
  } catch (err) {
    throw toAcmeError(err);
  } finally {
    clearTimeout(timer);
    await Promise.allSettled(req.responders.map((r) => r.stop()));
  }
}

async function runOrder(req: OrderRequest): Promise<OrderResult> {
  const { client, log } = req;
  const contact = req.email === '' ? undefined : [`mailto:${req.email}`];
  // Returns the existing account when the key is already registered (RFC 8555 section 7.3.1).
  await client.createAccount({ termsOfServiceAgreed: req.termsAgreed, ...(contact === undefined ? {} : { contact }) });

  const order = await client.createOrder({ identifiers: req.domains.map((value) => ({ type: 'dns', value })) });
  log.info({ orderUrl: order.url, domains: req.domains }, 'acme order created');

  const authorizations = await client.getAuthorizations(order);
  // Clean-ups run once every authorization has settled: a name and its wildcard share one TXT record name
  // (RFC 8555 section 8.4), and a hook that deletes by name would otherwise take away the value still being checked.
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const results = await Promise.allSettled(authorizations.map((authz) => authorize(req, authz, cleanups)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw toAcmeError(failed.reason, 'challenge_failed');
  } finally {
    await Promise.all(cleanups.map((cleanup) => cleanup()));
  }

  const commonName = req.domains[0] !== undefined && req.domains[0].length <= MAX_COMMON_NAME_CHARS ? req.domains[0] : undefined;
  const [, csr] = await acme.crypto.createCsr({ ...(commonName === undefined ? {} : { commonName }), altNames: [...req.domains] }, req.keyPem);
  const finalized = await client.finalizeOrder(order, csr);
  const certPem = await client.getCertificate(finalized);
  return { certPem, orderUrl: order.url };
}

async function authorize(req: OrderRequest, authz: Authorization, cleanups: Array<() => Promise<void>>): Promise<void> {
  const { client, log } = req;
  const domain = `${authz.wildcard === true ? '*.' : ''}${authz.identifier.value}`;
  if (authz.status === 'valid') return; // the CA reused an earlier authorization
  const picked = pickChallenge(authz, req.responders);
  if (picked === null) {
    const offered = authz.challenges.map((c) => c.type).join(', ');
    throw new AcmeError('no_supported_challenge', `no configured challenge for ${domain} (the CA offers ${offered})`);
  }
  const { responder, challenge } = picked;
  const started = Date.now();
  const keyAuthorization = await client.getChallengeKeyAuthorization(challenge as never);
  let completed = false;
  // Registered before create: a create that fails half-way (a hook that added the record, then timed out) is undone too.
  cleanups.push(() =>
    responder.remove(authz, challenge, keyAuthorization).catch((err: unknown) => {
      log.warn({ domain, type: responder.type, err: errorDetail(err) }, 'acme challenge cleanup failed');
    }),
  );
  try {
    await responder.create(authz, challenge, keyAuthorization);
    await client.completeChallenge(challenge as never);
    completed = true;
    await client.waitForValidStatus(challenge);
    log.info({ domain, type: responder.type, ms: Date.now() - started }, 'acme challenge answered');
  } catch (err) {
    // An authorization left pending counts against the CA's limits; give it up (RFC 8555 section 7.5.2).
    if (!completed) await client.deactivateAuthorization(authz).catch(() => {});
    if (err instanceof AcmeError) throw err;
    const cause = toAcmeError(err, 'challenge_failed');
    throw new AcmeError(cause.reason, `${responder.type} challenge for ${domain} failed: ${cause.message}`, { cause: err });
  }
}

function pickChallenge(authz: Authorization, responders: readonly ChallengeResponder[]): { responder: ChallengeResponder; challenge: ChallengeInfo } | null {
  for (const responder of responders) {
    const challenge = (authz.challenges as ChallengeInfo[]).find((c) => c.type === (responder.type satisfies ChallengeType));
    if (challenge !== undefined) return { responder, challenge };
  }
  return null;
}
