import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import acme from 'acme-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { type CertStore, type InstalledCertificate, describeCertificate } from '../tls/cert-store.js';
import { configureAcmeClient, resetTransportError, toAcmeError } from './acme-client-setup.js';
import { AcmeError, errorDetail } from './acme-error.js';
import { createAccountKey, createCertificateKey, keyMatchesType } from './acme-keys.js';
import { AcmeStore, type StoredCertificate } from './acme-store.js';
import type { ChallengeResponder } from './challenge-responder.js';
import { Dns01Hook } from './dns01-hook.js';
import { Http01Responder } from './http01-responder.js';
import { acquireOrderLock } from './order-lock.js';
import { loadShared, saveShared, withOrderLock, type SharedCertificates } from './shared-certificate.js';
import { orderCertificate } from './order-certificate.js';
import { renewalWindow, retryDelay, timerDelay } from './renewal-schedule.js';
import { TlsAlpnResponder } from './tls-alpn-responder.js';

export interface AcmeManagerOptions {
  config: Config;
  certStore: CertStore;
  log: Logger;
  audit?: (event: string, fields: Record<string, unknown>) => void;
  /** Relative acme.dir and acme.caFile are resolved against this directory; default: the working directory. */
  baseDir?: string;
  /** Nodes sharing a PostgreSQL store: one orders (advisory lock), the certificate is kept in the store for all. */
  shared?: SharedCertificates;
}

export type RenewTrigger = 'initial' | 'scheduled' | 'manual';

export type RenewResult =
  | { renewed: true; certificate: InstalledCertificate }
  | { renewed: false; certificate: InstalledCertificate; renewAt: Date };

export interface AcmeStatus {
  phase: 'idle' | 'running' | 'stopped';
  certificate: (ReturnType<typeof describeCertificate> & { installedAt: string }) | null;
  renewAt: string | null;
  renewing: boolean;
  consecutiveFailures: number;
  lastError: string | null;
  nextCheckAt: string | null;
  certFile: string;
  keyFile: string;
}

interface ManagedCertificate {
  installed: InstalledCertificate;
  renewAt: number;
  notAfter: number;
}

/** Polling the CA gives up after this many waits; the order deadline (challengeTimeoutMs) normally ends it first. */
const MAX_POLL_ATTEMPTS = 1_000;

/**
 * Obtains and renews the server certificate over ACME (RFC 8555) and installs it into the CertStore.
 *
 * `start()` installs a stored certificate when it is still valid, covers acme.domains, has the configured key type
 * and came from the configured CA; otherwise it starts an order in the background and returns, so the server can
 * come up on its self-signed certificate and switch when the 'installed' event fires (or `installed()` resolves).
 * Renewal is due `renewBeforeDays` before expiry or when `renewBeforeFraction` of the lifetime is left, whichever
 * is earlier. A failed renewal keeps the current certificate, is logged at error level with the CA's detail and the
 * time left, and is retried with exponential backoff between acme.retryMinMs and acme.retryMaxMs.
 */
export class AcmeManager extends EventEmitter<{ installed: [InstalledCertificate]; renewalFailed: [AcmeError] }> {
  readonly store: AcmeStore;
  readonly #config: Config['acme'];
  readonly #certStore: CertStore;
  readonly #log: Logger;
  readonly #audit: (event: string, fields: Record<string, unknown>) => void;
  readonly #caFile: string | null;
  #phase: AcmeStatus['phase'] = 'idle';
  #current: ManagedCertificate | null = null;
  #inflight: Promise<InstalledCertificate> | null = null;
  #responders: ChallengeResponder[] = [];
  #timer: NodeJS.Timeout | null = null;
  #nextCheckAt: number | null = null;
  #failures = 0;
  #lastError: string | null = null;
  #setup: Promise<void> | null = null;
  readonly #shared: SharedCertificates | null;

  constructor(options: AcmeManagerOptions) {
    super();
    const baseDir = options.baseDir ?? process.cwd();
    this.#config = options.config.acme;
    this.#certStore = options.certStore;
    this.#log = options.log.child({ component: 'acme' });
    this.#audit = options.audit ?? (() => {});
    this.#caFile = this.#config.caFile === '' ? null : resolve(baseDir, this.#config.caFile);
    this.store = new AcmeStore(resolve(baseDir, this.#config.dir));
    this.#shared = options.shared ?? null;
  }

  async start(): Promise<void> {
    if (!this.#config.enabled) throw new AcmeError('config', 'acme.enabled is false');
    if (this.#phase === 'running') return;
    await this.#prepare();
    this.#phase = 'running';
    await this.#loadStored();
    this.#schedule();
  }

  /** Stops timers and challenge listeners. An order already sent to the CA may still finish and be stored. */
  async stop(): Promise<void> {
    this.#phase = 'stopped';
    this.#clearTimer();
    const responders = this.#responders;
    this.#responders = [];
    await Promise.allSettled(responders.map((r) => r.stop()));
  }

  /**
   * Orders a certificate now when `force` is set or the current one is due (or missing); otherwise reports when it
   * will be. A call while an order runs joins that order. Rejects with an AcmeError when the order fails; the current
   * certificate stays installed then.
   */
  async renewNow(force = false): Promise<RenewResult> {
    await this.#prepare();
    if (this.#current === null) await this.#loadStored();
    const current = this.#current;
    if (!force && current !== null && Date.now() < current.renewAt) {
      return { renewed: false, certificate: current.installed, renewAt: new Date(current.renewAt) };
    }
    return { renewed: true, certificate: await this.#renew('manual') };
  }

  /**
   * Re-reads the stored certificate (for SIGHUP, or after `ftpsd cert renew` ran in another process) and installs it
   * when it differs from the current one. Returns whether it installed one.
   */
  async reload(): Promise<boolean> {
    const before = this.#current?.installed.leaf.fingerprint256;
    await this.#loadStored();
    const changed = this.#current !== null && this.#current.installed.leaf.fingerprint256 !== before;
    if (changed && this.#phase === 'running') this.#schedule();
    return changed;
  }

  /** Resolves with the ACME certificate once one is installed, at once when one already is. */
  installed(): Promise<InstalledCertificate> {
    if (this.#current !== null) return Promise.resolve(this.#current.installed);
    return new Promise((resolveInstalled) => this.once('installed', resolveInstalled));
  }

  status(): AcmeStatus {
    const current = this.#current;
    return {
      phase: this.#phase,
      certificate: current === null ? null : { ...describeCertificate(current.installed.leaf), installedAt: current.installed.installedAt.toISOString() },
      renewAt: current === null ? null : new Date(current.renewAt).toISOString(),
      renewing: this.#inflight !== null,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      nextCheckAt: this.#nextCheckAt === null ? null : new Date(this.#nextCheckAt).toISOString(),
      certFile: this.store.certFile,
      keyFile: this.store.keyFile,
    };
  }

  #prepare(): Promise<void> {
    this.#setup ??= configureAcmeClient(this.#config, this.#caFile, (line) => this.#log.trace({ line }, 'acme client')).catch((err: unknown) => {
      this.#setup = null; // a fixed caFile is picked up by the next call
      throw err;
    });
    return this.#setup;
  }

  async #loadStored(): Promise<void> {
    let stored: StoredCertificate | null;
    try {
      stored = await this.store.loadCertificate();
      // The store's copy is the cluster's; this node's files may hold an older one (or none, on a new node).
      const shared = this.#shared === null ? null : await loadShared(this.#shared);
      if (shared !== null && this.#usable(shared) && (stored === null || Date.parse(shared.leaf.validTo) >= Date.parse(stored.leaf.validTo))) {
        if (stored?.leaf.fingerprint256 !== shared.leaf.fingerprint256) await this.store.saveCertificate(shared.keyPem, shared.certPem, shared.meta);
        stored = shared;
      }
    } catch (err) {
      this.#log.error({ detail: errorDetail(err) }, 'acme stored certificate unreadable');
      return;
    }
    if (stored === null || !this.#usable(stored)) return;
    if (this.#current?.installed.leaf.fingerprint256 === stored.leaf.fingerprint256) return;
    this.#install(stored.keyPem, stored.certPem, 'store');
  }

  /** A stored certificate is used only if it still fits the configuration; anything else leads to a new order. */
  #usable(stored: StoredCertificate): boolean {
    const names = new Set((stored.leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4).toLowerCase()));
    const checks = {
      notExpired: Date.now() < new Date(stored.leaf.validTo).getTime(),
      coversDomains: this.#config.domains.every((d) => names.has(d.toLowerCase())),
      keyType: keyMatchesType(stored.leaf.publicKey, this.#config.keyType),
      sameCa: stored.meta.directoryUrl === this.#config.directoryUrl,
    };
    const failed = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
    if (failed.length > 0) this.#log.info({ serial: stored.leaf.serialNumber, failed }, 'acme stored certificate not used');
    return failed.length === 0;
  }

  #install(keyPem: string, certPem: string, from: 'store' | 'order'): InstalledCertificate {
    const installed = this.#certStore.install({ keyPem, certPem, source: 'acme' });
    const window = renewalWindow(installed.leaf, this.#config);
    this.#current = { installed, renewAt: window.renewAt, notAfter: window.notAfter };
    if (window.clamped) {
      this.#log.warn({ renewBeforeDays: this.#config.renewBeforeDays, lifetimeMs: window.notAfter - window.notBefore }, 'acme renewal window longer than certificate lifetime');
    }
    this.#log.info({ serial: installed.leaf.serialNumber, notAfter: new Date(window.notAfter).toISOString(), renewAt: new Date(window.renewAt).toISOString(), from }, 'acme certificate installed');
    this.emit('installed', installed);
    return installed;
  }

  /** One order at a time: a second caller gets the running order's promise. */
  #renew(trigger: RenewTrigger): Promise<InstalledCertificate> {
    this.#inflight ??= this.#attempt(trigger);
    return this.#inflight;
  }

  async #attempt(trigger: RenewTrigger): Promise<InstalledCertificate> {
    let installed: InstalledCertificate;
    try {
      installed = await this.#orderAndInstall(trigger);
    } catch (err) {
      this.#inflight = null;
      throw this.#failed(trigger, err);
    }
    this.#inflight = null;
    this.#failures = 0;
    this.#lastError = null;
    if (this.#phase === 'running') this.#schedule();
    return installed;
  }

  async #orderAndInstall(trigger: RenewTrigger): Promise<InstalledCertificate> {
    // Another process (`ftpsd cert renew` beside the server, or the server beside it) may be ordering into the same
    // directory: then this attempt fails as 'busy' and the scheduler retries later.
    await mkdir(this.store.dir, { recursive: true });
    const release = await acquireOrderLock(this.store.dir);
    try {
      if (this.#shared === null) return await this.#order(trigger);
      // Several nodes: one orders, the others take its certificate from the store.
      const ordered = await withOrderLock(this.#shared, this.#config.directoryUrl, async () => {
        await this.#loadStored();
        const current = this.#current;
        // An attempt is started only without a certificate or with a due one. One that is installed and not due now
        // came from another node that ordered meanwhile: installed here just now from the store, or a moment earlier
        // by the NOTIFY that announced it (so comparing with the certificate at the start of this call would miss it).
        if (trigger !== 'manual' && current !== null && Date.now() < current.renewAt) return current.installed;
        return this.#order(trigger);
      });
      if (ordered === null) throw new AcmeError('busy', 'another node is ordering the certificate; it is installed here once stored');
      return ordered.value;
    } finally {
      await release();
    }
  }

  async #order(trigger: RenewTrigger): Promise<InstalledCertificate> {
    const started = Date.now();
    resetTransportError();
    const accountKey = await this.store.loadOrCreateAccountKey(createAccountKey);
    // A new client per order: a CA that lost the account (or a changed directory) is handled by registering again.
    const client = new acme.Client({
      directoryUrl: this.#config.directoryUrl,
      accountKey,
      backoffMin: this.#config.pollIntervalMinMs,
      backoffMax: Math.max(this.#config.pollIntervalMinMs, this.#config.pollIntervalMaxMs),
      backoffAttempts: MAX_POLL_ATTEMPTS,
      ...(this.#config.eab.keyId !== '' && this.#config.eab.hmacKey !== ''
        ? { externalAccountBinding: { kid: this.#config.eab.keyId, hmacKey: this.#config.eab.hmacKey } }
        : {}),
    });
    const keyPem = await createCertificateKey(this.#config.keyType);
    this.#responders = this.#createResponders();
    const { certPem, orderUrl } = await orderCertificate({
      client,
      domains: this.#config.domains,
      keyPem,
      responders: this.#responders,
      email: this.#config.email,
      termsAgreed: this.#config.termsAgreed,
      timeoutMs: this.#config.challengeTimeoutMs,
      log: this.#log,
    });
    this.#responders = [];
    const leaf = parseLeaf(certPem);
    this.#log.info({ serial: leaf.serialNumber, domains: this.#config.domains, notAfter: new Date(leaf.validTo).toISOString(), orderUrl, trigger, ms: Date.now() - started }, 'acme certificate issued');
    this.#audit('acme_certificate_issued', { serial: leaf.serialNumber, domains: this.#config.domains, notAfter: new Date(leaf.validTo).toISOString(), trigger });
    const keyText = keyPem.toString();
    try {
      await this.store.saveCertificate(keyText, certPem, {
        directoryUrl: this.#config.directoryUrl,
        domains: [...this.#config.domains],
        keyType: this.#config.keyType,
        issuedAt: new Date().toISOString(),
      });
      if (this.#shared !== null) await saveShared(this.#shared, keyText, certPem, { directoryUrl: this.#config.directoryUrl, domains: [...this.#config.domains], keyType: this.#config.keyType, issuedAt: new Date().toISOString() });
    } catch (err) {
      // Still use the new certificate; ordering again would only spend the CA's rate limit on the same disk problem.
      this.#install(keyText, certPem, 'order');
      throw new AcmeError('store', `issued certificate ${leaf.serialNumber} could not be stored in ${this.store.dir}: ${(err as Error).message}`, { cause: err });
    }
    return this.#install(keyText, certPem, 'order');
  }

  #createResponders(): ChallengeResponder[] {
    const c = this.#config;
    return c.challenges.map((type): ChallengeResponder => {
      switch (type) {
        case 'http-01':
          return new Http01Responder({ host: c.http01.host, port: c.http01.port, log: this.#log });
        case 'tls-alpn-01':
          return new TlsAlpnResponder({ host: c.tlsAlpn01.host, port: c.tlsAlpn01.port, log: this.#log });
        case 'dns-01':
          return new Dns01Hook({ hook: c.dns01.hook, timeoutMs: c.dns01.hookTimeoutMs, propagationDelayMs: c.dns01.propagationDelayMs, log: this.#log });
      }
    });
  }

  #failed(trigger: RenewTrigger, err: unknown): AcmeError {
    this.#responders = [];
    const error = toAcmeError(err);
    this.#failures += 1;
    this.#lastError = error.message;
    const msLeft = this.#current === null ? null : this.#current.notAfter - Date.now();
    let retryInMs: number | null = null;
    if (this.#phase === 'running') {
      retryInMs = retryDelay(this.#failures, this.#config.retryMinMs, this.#config.retryMaxMs);
      this.#arm(Date.now() + retryInMs);
    }
    this.#log.error({ reason: error.reason, detail: error.message, trigger, msLeft, retryInMs, failures: this.#failures }, 'acme renewal failed');
    this.#audit('acme_renewal_failed', { reason: error.reason, detail: error.message, msLeft, failures: this.#failures });
    this.emit('renewalFailed', error);
    return error;
  }

  /** Orders at once when there is no certificate or it is due; otherwise wakes up when it will be. */
  #schedule(): void {
    const current = this.#current;
    if (current !== null && Date.now() < current.renewAt) {
      this.#arm(current.renewAt);
      return;
    }
    this.#clearTimer();
    this.#renew(current === null ? 'initial' : 'scheduled').catch(() => {}); // logged in #failed
  }

  /** Timers wake up at most every checkIntervalMs and never beyond 2^31-1 ms, then look again. */
  #arm(at: number): void {
    this.#clearTimer();
    const delay = timerDelay(at, Date.now(), this.#config.checkIntervalMs);
    this.#nextCheckAt = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#nextCheckAt = null;
      if (this.#phase !== 'running') return;
      if (Date.now() < at) this.#arm(at);
      else this.#schedule();
    }, delay);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#nextCheckAt = null;
  }
}

function parseLeaf(certPem: string): X509Certificate {
  try {
    return new X509Certificate(certPem);
  } catch (err) {
    throw new AcmeError('ca_rejected', 'the CA returned a certificate that cannot be parsed', { cause: err });
  }
}
