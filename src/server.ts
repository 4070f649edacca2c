import { TicketRegistry } from './tls/session-tickets.js';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AcmeManager } from './acme/acme-manager.js';
import { AuditLog } from './audit/audit-log.js';
import { resolveAuditPaths } from './audit/chain.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { UserDirectory } from './auth/user-directory.js';
import type { User } from './auth/users-file.js';
import { buildRegistry } from './commands/registry.js';
import { resolvePath } from './config/load.js';
import type { Config } from './config/schema.js';
import { ControlServer } from './control/control-server.js';
import type { DefenderPort, ServerContext } from './control/server-context.js';
import type { Session } from './control/session.js';
import { PassivePortPool } from './data/passive-ports.js';
import { resolveBansFile } from './defender/ban-file.js';
import { Defender } from './defender/defender.js';
import { createLogger } from './log/logger.js';
import { startMetricsServer, type MetricsServer, type Readiness } from './metrics/metrics-server.js';
import { noMetrics, type MetricsSink } from './metrics/metrics-sink.js';
import { PrometheusMetrics } from './metrics/prometheus-metrics.js';
import { DigestPool } from './storage/digest-pool.js';
import { createLocalStorage } from './storage/local-backend.js';
import { CertStore, describeCertificate, type CertificatePair } from './tls/cert-store.js';
import { ensureSelfSignedCertificate } from './tls/self-signed.js';

export interface StartOptions {
  config: Config;
  /** Relative paths in the config resolve against this directory. */
  baseDir: string;
  log?: Logger;
  metrics?: MetricsSink;
}

export interface ServerHandle {
  readonly host: string;
  readonly port: number;
  /** Port of the implicit FTPS listener, null when implicit.enabled is off. */
  readonly implicitPort: number | null;
  readonly config: Config;
  readonly log: Logger;
  readonly certStore: CertStore;
  readonly users: UserDirectory;
  readonly defender: Defender | null;
  readonly passivePorts: PassivePortPool;
  /** Port of the metrics/health listener, null when metrics.enabled is off. */
  readonly metricsPort: number | null;
  sessionCount(): number;
  /** What /readyz answers: listening, not stopping, certificate within its validity period. */
  readiness(): Readiness;
  /** Re-reads the users file; throws (keeping the old users) when it is invalid. */
  reloadUsers(): { added: string[]; removed: string[] };
  /** Certificate automation when acme.enabled, else null. */
  readonly acme: AcmeManager | null;
  /** Re-reads tls.certFile/keyFile (or the self-signed pair); new sessions get it, open ones keep theirs. */
  reloadCertificate(): Promise<boolean>;
  /** Graceful stop: no new sessions, idle ones told 421, running transfers get up to graceMs, then everything closes. */
  close(graceMs?: number): Promise<void>;
}

const noDefender: DefenderPort = { record: () => undefined, isBanned: () => false };

export async function startServer(opts: StartOptions): Promise<ServerHandle> {
  const { config, baseDir } = opts;
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = opts.metrics ?? (config.metrics.enabled ? new PrometheusMetrics() : noMetrics);
  const abs = (p: string) => resolvePath(baseDir, p);

  const certStore = new CertStore();
  const loadCertificate = async (): Promise<CertificatePair> => {
    if (config.tls.certFile !== '') {
      return { certPem: readFileSync(abs(config.tls.certFile), 'utf8'), keyPem: readFileSync(abs(config.tls.keyFile), 'utf8'), source: 'file' };
    }
    return ensureSelfSignedCertificate({ dir: abs(config.tls.selfSignedDir), names: config.tls.selfSignedNames, log });
  };
  const installed = certStore.install(await loadCertificate());
  log.info({ event: 'certificate_installed', source: installed.source, ...describeCertificate(installed.leaf) }, 'certificate installed');

  const hasher = new PasswordHasher({ concurrency: config.limits.passwordHashConcurrency, queueMax: config.limits.passwordHashQueueMax, reserved: config.limits.passwordHashReservedQueue });
  const loginThrottle = new LoginThrottle({ failuresBeforeThrottle: config.limits.accountFailuresBeforeThrottle, windowMs: config.limits.accountFailureWindowMs });
  const users = new UserDirectory({ file: abs(config.users.file), resolveHome: abs, hasher, log });
  users.reload();

  const auditPaths = resolveAuditPaths(config, baseDir);
  const auditLog = auditPaths === null
    ? null
    : new AuditLog({ ...auditPaths, checkpointEvery: config.log.auditCheckpointEvery, rotateBytes: config.log.auditRotateBytes, log });
  const auditLogger = log.child({ component: 'audit' });
  const audit = (event: string, fields: Record<string, unknown>) => {
    auditLogger.info({ audit: true, event, ...fields }, `audit ${event}`);
    try {
      auditLog?.append(event, fields);
    } catch (err) {
      log.error({ err, event }, 'audit append failed');
    }
  };

  const defender = config.defender.enabled ? new Defender({ config: config.defender, file: resolveBansFile(config, baseDir), log }) : null;

  let stopping = false;
  let control: ControlServer | null = null;
  const digests = new DigestPool(config.limits.digestWorkers, config.limits.transferChunkBytes);
  const ctx: ServerContext = {
    config,
    log,
    certStore,
    users,
    hasher,
    loginThrottle,
    commands: buildRegistry(),
    passivePorts: new PassivePortPool(config.pasv.minPort, config.pasv.maxPort),
    defender: defender ?? noDefender,
    metrics,
    tickets: new TicketRegistry(),
    get stopping() {
      return stopping;
    },
    audit,
    createStorage: (user: User, session: { sid: string; ip: string }) =>
      createLocalStorage({
        home: user.home,
        maxPathBytes: config.storage.maxPathBytes,
        maxNameBytes: config.storage.maxNameBytes,
        atomicUploads: config.storage.atomicUploads,
        fsyncOnCommit: config.storage.fsyncOnCommit,
        listingSortMaxEntries: config.storage.listingSortMaxEntries,
        digests,
        log: log.child({ user: user.name }),
        // A security event: the tree changed under an operation (or a link leads out of the home); virtual path only.
        onViolation: (v) => audit('confinement_violation', { sid: session.sid, ip: session.ip, user: user.name, ...v }),
      }),
    acquireLogin: (session: Session, user: string) => control?.acquireLogin(session, user) ?? false,
    sessionEnded: (session: Session, reason: string) => control?.release(session, reason !== 'rein'),
  };
  control = new ControlServer(ctx);

  defender?.on('ban', (ban) => {
    audit('ban', { ip: ban.ip, until: new Date(ban.until).toISOString(), reason: ban.reason, offences: ban.offences });
    control?.closeSessionsOf(ban.ip, 'Service not available: your address is temporarily blocked');
  });
  certStore.on('change', (cert, previous) => {
    audit('certificate_change', { source: cert.source, serial: cert.leaf.serialNumber, previousSerial: previous?.leaf.serialNumber, notAfter: new Date(cert.leaf.validTo).toISOString() });
  });

  // ACME replaces the self-signed certificate installed above once its first order succeeds, and renews by itself.
  // Loaded only when used: acme-client and its HTTP stack cost a third of a second and megabytes at start-up.
  const acme = config.acme.enabled ? new (await import('./acme/acme-manager.js')).AcmeManager({ config, certStore, log, audit, baseDir }) : null;

  const reloadCertificate = async (): Promise<boolean> => {
    if (acme !== null) return acme.reload();
    try {
      const pair = await loadCertificate();
      if (pair.certPem === certStore.current().certPem && pair.keyPem === certStore.current().keyPem) return false;
      const next = certStore.install(pair);
      log.info({ event: 'certificate_installed', source: next.source, ...describeCertificate(next.leaf) }, 'certificate installed');
      return true;
    } catch (err) {
      log.error({ err, event: 'certificate_reload_failed' }, 'certificate reload failed; keeping the current certificate');
      return false;
    }
  };
  // certbot and similar renew the files outside; pick them up without a restart.
  const watched = config.tls.certFile !== '' && config.tls.watchIntervalMs > 0 ? [abs(config.tls.certFile), abs(config.tls.keyFile)] : [];
  for (const f of watched) watchFile(f, { interval: config.tls.watchIntervalMs, persistent: false }, () => void reloadCertificate());

  let listening = false;
  const readiness = (): Readiness => {
    const problems: string[] = [];
    if (!listening) problems.push('control port not listening');
    if (stopping) problems.push('shutting down');
    if (!certStore.has()) problems.push('no certificate');
    else {
      const leaf = certStore.current().leaf;
      const now = Date.now();
      if (Date.parse(leaf.validTo) <= now) problems.push(`certificate expired ${new Date(leaf.validTo).toISOString()}`);
      else if (Date.parse(leaf.validFrom) > now) problems.push(`certificate not valid before ${new Date(leaf.validFrom).toISOString()}`);
    }
    return { ready: problems.length === 0, problems };
  };
  metrics.attach({
    knownVerbs: () => ctx.commands.keys(),
    passivePortsInUse: () => ctx.passivePorts.inUse,
    passivePortsSize: () => ctx.passivePorts.size,
    bansActive: () => defender?.list().length ?? 0,
    certificateNotAfterMs: () => (certStore.has() ? Date.parse(certStore.current().leaf.validTo) : null),
    ready: () => readiness().ready,
  });

  const address = await control.listen(config.listen.host, config.listen.port);
  let implicitAddress: AddressInfo | null = null;
  try {
    if (config.implicit.enabled) implicitAddress = await control.listen(config.implicit.host, config.implicit.port, 'implicit');
  } catch (err) {
    await control.stopAccepting();
    throw err;
  }
  listening = true;
  let metricsServer: MetricsServer | null = null;
  if (config.metrics.enabled) {
    try {
      metricsServer = await startMetricsServer({
        host: config.metrics.host,
        port: config.metrics.port,
        metrics: metrics instanceof PrometheusMetrics ? metrics : { render: () => Promise.resolve(''), contentType: 'text/plain; version=0.0.4' },
        readiness,
        log,
      });
    } catch (err) {
      await control.stopAccepting();
      throw err;
    }
  }
  await acme?.start();
  log.info(
    {
      event: 'listening',
      host: address.address,
      port: address.port,
      implicit: implicitAddress === null ? null : { host: implicitAddress.address, port: implicitAddress.port },
      pasv: `${config.pasv.minPort}-${config.pasv.maxPort}`,
    },
    'ftpsd listening',
  );

  let closing: Promise<void> | null = null;
  const close = (graceMs = config.shutdown.graceMs): Promise<void> => {
    closing ??= (async () => {
      stopping = true;
      const server = control!;
      const stopped = server.stopAccepting();
      const busy: Promise<void>[] = [];
      for (const s of server.sessions) {
        if (s.data.busy) busy.push(s.settled());
        else {
          s.send({ code: 421, text: 'Server shutting down' });
          s.close('shutdown');
        }
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(busy), new Promise((r) => (timer = setTimeout(r, graceMs).unref()))]);
      clearTimeout(timer);
      const remaining = [...server.sessions];
      for (const s of remaining) {
        s.send({ code: 421, text: 'Server shutting down' });
        s.close('shutdown');
      }
      // Closing aborts what still runs; wait for the aborts themselves (an upload moves its bytes to the partial
      // name, never to the target) so the process does not exit under them.
      await Promise.race([Promise.all(remaining.map((s) => s.settled())), new Promise((r) => setTimeout(r, config.limits.dataCloseTimeoutMs).unref())]);
      await stopped;
      listening = false;
      await metricsServer?.close();
      await acme?.stop();
      for (const f of watched) unwatchFile(f);
      defender?.close();
      await auditLog?.close();
      await digests.close();
      log.info({ event: 'stopped' }, 'ftpsd stopped');
    })();
    return closing;
  };

  return {
    host: address.address,
    port: address.port,
    implicitPort: implicitAddress?.port ?? null,
    config,
    log,
    certStore,
    users,
    defender,
    passivePorts: ctx.passivePorts,
    metricsPort: metricsServer?.port ?? null,
    sessionCount: () => control!.sessions.size,
    readiness,
    reloadUsers: () => users.reload(),
    reloadCertificate,
    acme,
    close,
  };
}
