import { TicketRegistry } from './tls/session-tickets.js';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AcmeManager } from './acme/acme-manager.js';
import { AuditLog } from './audit/audit-log.js';
import { resolveAuditPaths } from './audit/chain.js';
import { accessOf, isLoginUser } from './access/login-user.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { StoreDirectory } from './auth/store-directory.js';
import type { User } from './auth/users-file.js';
import { buildRegistry } from './commands/registry.js';
import { resolvePath, type LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { ClusterBus } from './cluster/cluster-bus.js';
import { ClusterSessions } from './cluster/cluster-sessions.js';
import { nodeIdOf } from './cluster/node-identity.js';
import { ControlServer } from './control/control-server.js';
import type { DefenderPort, ServerContext } from './control/server-context.js';
import type { Session } from './control/session.js';
import { sessionRegistry, type SessionRegistry } from './control/session-registry.js';
import { reloadServer, type ReloadReport } from './ops/reload.js';
import { PassivePortPool } from './data/passive-ports.js';
import { resolveBansFile } from './defender/ban-file.js';
import { Defender } from './defender/defender.js';
import { EventBus } from './events/event-bus.js';
import { noEventMetrics, prometheusEventMetrics } from './events/events-metrics.js';
import { createLogger } from './log/logger.js';
import { startMetricsServer, type MetricsServer, type Readiness } from './metrics/metrics-server.js';
import { noMetrics, type MetricsSink } from './metrics/metrics-sink.js';
import { PrometheusMetrics } from './metrics/prometheus-metrics.js';
import { DigestPool } from './storage/digest-pool.js';
import { createLocalStorage } from './storage/local-backend.js';
import { MountedStorage } from './storage/mounted-storage.js';
import { createS3Storage } from './storage/s3-backend.js';
import { S3Clients } from './storage/s3-clients.js';
import { isS3Path } from './storage/s3-place.js';
import { S3Sweeper } from './storage/s3-sweeper.js';
import { countS3Usage } from './storage/s3-usage.js';
import { allLocations, countUsage } from './partners/locations.js';
import { storeBanPersistence } from './store/ban-repo.js';
import { openStore, storeOptions, type Store } from './store/open-store.js';
import { loadPartners, recordLogin } from './store/partner-repo.js';
import { importLegacyFiles } from './partners/first-start.js';
import { Housekeeping } from './partners/scheduler.js';
import { storeLedger } from './partners/store-ledger.js';
import { StoreWatch } from './partners/store-watch.js';
import { CertStore, describeCertificate, type CertificatePair } from './tls/cert-store.js';
import { ensureSelfSignedCertificate } from './tls/self-signed.js';

export interface StartOptions {
  config: Config;
  /** Relative paths in the config resolve against this directory. */
  baseDir: string;
  log?: Logger;
  metrics?: MetricsSink;
  /** An open store to use (left open at close); by default the configured one is opened and closed with the server. */
  store?: Store;
  /** Reads the configuration again for a reload from the admin API (as SIGHUP does); default: the one started with. */
  loadConfig?: () => LoadedConfig;
}

/** An audit record of a transfer, kept for the admin's dashboard. */
export type RecentTransfer = Record<string, unknown> & { time: string };

export interface ServerHandle {
  readonly host: string;
  readonly port: number;
  /** Port of the implicit FTPS listener, null when implicit.enabled is off. */
  readonly implicitPort: number | null;
  readonly config: Config;
  /** cluster.nodeId, or the host name. */
  readonly nodeId: string;
  readonly log: Logger;
  readonly certStore: CertStore;
  readonly users: StoreDirectory;
  readonly store: Store;
  readonly defender: Defender | null;
  /** Event hooks: rules, the durable queue and its delivery worker. */
  readonly events: EventBus;
  readonly passivePorts: PassivePortPool;
  /** Port of the metrics/health listener, null when metrics.enabled is off. */
  readonly metricsPort: number | null;
  sessionCount(): number;
  /** What /readyz answers: listening, not stopping, certificate within its validity period. */
  readiness(): Readiness;
  /** Re-reads the users from the store (they are read at each login anyway); names added and removed since. */
  reloadUsers(): Promise<{ added: string[]; removed: string[] }>;
  /** Runs the store poll now (tests): audit forwarding, session re-checks. */
  syncStore(): Promise<void>;
  /** Runs retention, partial expiry and lifecycle jobs now. */
  runHousekeeping(): Promise<void>;
  /** Certificate automation when acme.enabled, else null. */
  readonly acme: AcmeManager | null;
  /** Re-reads tls.certFile/keyFile (or the self-signed pair); new sessions get it, open ones keep theirs. */
  reloadCertificate(): Promise<boolean>;
  /** Live sessions as snapshots, and closing one: all the admin API sees of sessions. */
  readonly sessions: SessionRegistry;
  /** The latest transfers (admin.recentTransfers of them), newest first. */
  recentTransfers(): RecentTransfer[];
  /** Writes an audit event (log and audit file). */
  audit(event: string, fields: Record<string, unknown>): void;
  /** The audit file and its checkpoint key; null when log.auditFile is empty. */
  readonly auditTrail: { file: string; hmacKeyFile: string; flush(): Promise<void> } | null;
  /** A path of the configuration resolved against its directory. */
  resolvePath(p: string): string;
  /** Epoch milliseconds of the start. */
  readonly startedAt: number;
  /** What SIGHUP does: configuration, users and certificate re-read; open sessions untouched. */
  reload(): Promise<ReloadReport>;
  /** Port of the HTTPS admin listener, null when admin.enabled is off. */
  readonly adminPort: number | null;
  /** Graceful stop: no new sessions, idle ones told 421, running transfers get up to graceMs, then everything closes. */
  close(graceMs?: number): Promise<void>;
}

const noDefender: DefenderPort = { record: () => undefined, isBanned: () => false };

export async function startServer(opts: StartOptions): Promise<ServerHandle> {
  const { config, baseDir } = opts;
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = opts.metrics ?? (config.metrics.enabled ? new PrometheusMetrics() : noMetrics);
  const abs = (p: string) => resolvePath(baseDir, p);
  // A folder's path is a local directory (relative ones resolve against baseDir) or s3://LOCATION/BUCKET/PREFIX.
  const location = (p: string) => (isS3Path(p) ? p : abs(p));
  const s3 = new S3Clients(() => config.storage.s3, (op) => metrics.s3Request(op));

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
  const ownStore = opts.store === undefined;
  const store = opts.store ?? (await openStore(storeOptions(config, baseDir)));
  const imported = await importLegacyFiles(store, { usersFile: abs(config.users.file), bansFile: resolveBansFile(config, baseDir) });
  if (imported.importedUsers !== null && imported.importedUsers.length + imported.importedBans > 0) {
    log.info({ event: 'store_imported', users: imported.importedUsers, bans: imported.importedBans, store: store.location }, 'users file imported into the store');
  }
  const users = new StoreDirectory({ store, hasher, log, resolveLocation: location });
  await users.reload();
  const ledger = storeLedger(store, (root) => (isS3Path(root) ? countS3Usage(s3, root) : countUsage(root)));

  const nodeId = nodeIdOf(config);
  const auditPaths = resolveAuditPaths(config, baseDir, nodeId);
  const auditLog = auditPaths === null
    ? null
    : new AuditLog({ ...auditPaths, checkpointEvery: config.log.auditCheckpointEvery, rotateBytes: config.log.auditRotateBytes, log });
  const auditLogger = log.child({ component: 'audit' });
  const recent: RecentTransfer[] = [];
  const audit = (event: string, fields: Record<string, unknown>) => {
    auditLogger.info({ audit: true, event, ...fields }, `audit ${event}`);
    if (event === 'transfer') {
      recent.unshift({ time: new Date().toISOString(), ...fields });
      if (recent.length > config.admin.recentTransfers) recent.pop();
    }
    try {
      auditLog?.append(event, fields);
    } catch (err) {
      log.error({ err, event }, 'audit append failed');
    }
  };

  const defender = config.defender.enabled ? new Defender({ config: config.defender, persistence: storeBanPersistence(store.db, store.location, store.engine), log }) : null;
  await defender?.ready;

  // Several nodes on one PostgreSQL store: per-user session caps count every node's sessions, and writes that must
  // reach the other nodes at once (bans, the certificate) wake them through LISTEN/NOTIFY.
  const shared = store.engine === 'postgres';
  const bus = shared && config.store.url !== '' ? new ClusterBus(config.store.url, log) : null;
  await bus?.ready;
  const clusterSessions = shared
    ? new ClusterSessions({ store, nodeId, heartbeatIntervalMs: config.cluster.heartbeatIntervalMs, sessionExpiryMs: config.cluster.sessionExpiryMs, log })
    : null;
  await clusterSessions?.start();

  const events: EventBus = new EventBus({
    store,
    node: config.events.node !== '' ? config.events.node : nodeId,
    settings: () => config.events,
    quarantineDir: () => (config.events.quarantineDir === '' ? null : abs(config.events.quarantineDir)),
    log,
    audit,
    metrics: metrics instanceof PrometheusMetrics ? prometheusEventMetrics(metrics.registry, () => events.waiting()) : noEventMetrics,
  });
  await events.start();

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
    events,
    get stopping() {
      return stopping;
    },
    audit,
    createStorage: (user: User, session: { sid: string; ip: string }) => {
      const userLog = log.child({ user: user.name });
      return new MountedStorage({
        view: accessOf(user),
        limits: { maxPathBytes: config.storage.maxPathBytes, maxNameBytes: config.storage.maxNameBytes },
        resolveLocation: location,
        // Each folder keeps its own home jail: symlinks may not lead out of the folder's root.
        createBackend: (root) =>
          isS3Path(root) ? createS3Storage({ root, clients: s3, maxPathBytes: config.storage.maxPathBytes, maxNameBytes: config.storage.maxNameBytes, log: userLog }) : createLocalStorage({
            home: root,
            maxPathBytes: config.storage.maxPathBytes,
            maxNameBytes: config.storage.maxNameBytes,
            atomicUploads: config.storage.atomicUploads,
            fsyncOnCommit: config.storage.fsyncOnCommit,
            syncIoMaxBytes: config.storage.syncIoMaxBytes,
            listingSortMaxEntries: config.storage.listingSortMaxEntries,
            digests,
            log: userLog,
            // A security event: the tree changed under an operation (or a link leads out of the folder); virtual path only.
            onViolation: (v) => audit('confinement_violation', { sid: session.sid, ip: session.ip, user: user.name, ...v }),
          }),
        ledger,
        log: userLog,
      });
    },
    acquireLogin: async (session: Session, user: string, account?: User) => {
      // A partner's policy may allow fewer (or more) sessions than limits.maxLoginsPerUser.
      const max = account !== undefined && isLoginUser(account) && account.maxSessions !== null ? account.maxSessions : config.limits.maxLoginsPerUser;
      if (control?.acquireLogin(session, user, max) !== true) return false;
      if (clusterSessions !== null) {
        let claimed: boolean;
        try {
          claimed = await clusterSessions.claim(session.id, user, session.peerIp, max);
        } catch (err) {
          // The store is unreachable: the cap over all nodes cannot be checked; this node's own cap still held.
          log.warn({ err, user, event: 'cluster_session_unchecked' }, 'session cap across nodes not checked');
          claimed = true;
        }
        if (!claimed) {
          control.release(session, false);
          return false;
        }
        // Closed while the store answered: its end has already been handled, without this row.
        if (session.closed) clusterSessions.release(session.id);
      }
      recordLogin(store.db, user, Date.now()).catch((err: unknown) => log.warn({ err, user }, 'last login not recorded'));
      return true;
    },
    sessionEnded: (session: Session, reason: string) => {
      clusterSessions?.release(session.id);
      control?.release(session, reason !== 'rein');
    },
  };
  control = new ControlServer(ctx);

  defender?.on('ban', (ban, origin) => {
    // Another node's ban is that node's audit record; here it only closes this node's sessions of the address.
    if (origin === 'local') audit('ban', { ip: ban.ip, until: new Date(ban.until).toISOString(), reason: ban.reason, offences: ban.offences });
    // Other nodes must refuse the address within a second: written now, not after defender.saveDelayMs.
    if (origin === 'local' && bus !== null) void defender.flush();
    // Every node loads a ban another imposed: one id for all of them, so the store keeps one event.
    events.publish({ event: 'ban', id: `ban-${ban.ip}-${ban.until}`, ip: ban.ip, reason: ban.reason, details: { until: new Date(ban.until).toISOString(), offences: ban.offences } });
    control?.closeSessionsOf(ban.ip, 'Service not available: your address is temporarily blocked');
  });
  certStore.on('change', (cert, previous) => {
    audit('certificate_change', { source: cert.source, serial: cert.leaf.serialNumber, previousSerial: previous?.leaf.serialNumber, notAfter: new Date(cert.leaf.validTo).toISOString() });
    // Files renewed outside (certbot); ACME orders are published below, when they are issued.
    if (previous != null && cert.source === 'file') events.publish({ event: 'certificate_renewed', details: { source: 'file', serial: cert.leaf.serialNumber, previousSerial: previous.leaf.serialNumber, notAfter: new Date(cert.leaf.validTo).toISOString() } });
  });

  // ACME replaces the self-signed certificate installed above once its first order succeeds, and renews by itself.
  // Loaded only when used: acme-client and its HTTP stack cost a third of a second and megabytes at start-up.
  const acmeAudit = (event: string, fields: Record<string, unknown>) => {
    audit(event, fields);
    if (event === 'acme_certificate_issued') events.publish({ event: 'certificate_renewed', details: { source: 'acme', ...fields } });
    else if (event === 'acme_renewal_failed') events.publish({ event: 'certificate_renewal_failed', result: 'failed', reason: typeof fields.reason === 'string' ? fields.reason : null, details: fields });
  };
  const acme = config.acme.enabled ? new (await import('./acme/acme-manager.js')).AcmeManager({ config, certStore, log, audit: acmeAudit, baseDir, ...(shared ? { shared: { store, nodeId } } : {}) }) : null;

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

  // Users disabled, expired or deleted while logged in are closed at once: by an in-process change through this
  // watch's next tick, by another process within store.pollIntervalMs.
  const closeUser = (session: Session, reason: string, text: string) => {
    session.log.info({ event: 'session_closed_by_policy', user: session.phase.kind === 'ready' ? session.phase.user.name : undefined, reason }, 'session closed: account no longer allowed');
    session.server.audit('session_closed', { sid: session.id, ip: session.peerIp, user: session.phase.kind === 'ready' ? session.phase.user.name : undefined, reason });
    session.send({ code: 421, text });
    session.close(reason);
  };
  const watch = new StoreWatch({
    store,
    nodeId,
    intervalMs: config.store.pollIntervalMs,
    log,
    audit,
    async onChange(changes) {
      events.fromChanges(changes);
      if (changes.some((c) => c.entityKind === 'event_rule' || c.entityKind === 'event_action')) await events.refresh();
      await users.reload();
      const touched = new Set(changes.filter((c) => c.entityKind === 'user' || c.entityKind === 'group').map((c) => c.entityName));
      if (touched.size === 0) return;
      for (const session of [...control!.sessions]) {
        if (session.phase.kind !== 'ready') continue;
        const current = await users.load(session.phase.user.name);
        if (session.closed || session.phase.kind !== 'ready') continue;
        if (current === null) closeUser(session, 'user_deleted', 'Account removed; closing connection');
        else if (current.disabled) closeUser(session, 'user_disabled', 'Account disabled; closing connection');
      }
    },
    onTick(now) {
      for (const session of [...control!.sessions]) {
        if (session.phase.kind !== 'ready') continue;
        const u = session.phase.user;
        if (isLoginUser(u) && u.expiresAt !== null && u.expiresAt <= now) closeUser(session, 'user_expired', 'Account expired; closing connection');
      }
    },
  });
  await watch.start();
  bus?.on('signal', (signal) => {
    if (signal === 'bans') void defender?.reload();
    else if (signal === 'changes') void watch.tick();
    else if (signal === 'certificate') void acme?.reload();
  });
  const housekeeping = new Housekeeping({ store, log, resolve: abs, settings: () => config.housekeeping });
  housekeeping.start();
  const s3Sweeper = new S3Sweeper({ clients: s3, log, roots: async () => allLocations(await loadPartners(store.db), location).map((l) => l.root).filter(isS3Path) });
  s3Sweeper.start();

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

  let admin: { port: number; close(): Promise<void> } | null = null;
  let closing: Promise<void> | null = null;
  const close = (graceMs = config.shutdown.graceMs): Promise<void> => {
    closing ??= (async () => {
      stopping = true;
      await admin?.close();
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
      await clusterSessions?.close();
      await bus?.close();
      await defender?.close();
      await housekeeping.close();
      await s3Sweeper.close();
      s3.close();
      await watch.close();
      await events.close();
      if (ownStore) await store.close();
      await auditLog?.close();
      await digests.close();
      log.info({ event: 'stopped' }, 'ftpsd stopped');
    })();
    return closing;
  };

  const startedAt = Date.now();
  const handle: ServerHandle = {
    host: address.address,
    port: address.port,
    implicitPort: implicitAddress?.port ?? null,
    config,
    nodeId,
    log,
    certStore,
    users,
    store,
    defender,
    events,
    passivePorts: ctx.passivePorts,
    metricsPort: metricsServer?.port ?? null,
    sessionCount: () => control!.sessions.size,
    readiness,
    reloadUsers: () => users.reload(),
    syncStore: () => watch.tick(),
    runHousekeeping: () => housekeeping.run(),
    reloadCertificate,
    acme,
    sessions: sessionRegistry(() => control!.sessions),
    recentTransfers: () => [...recent],
    audit,
    auditTrail: auditLog === null || auditPaths === null ? null : { file: auditPaths.file, hmacKeyFile: auditPaths.hmacKeyFile, flush: () => auditLog.flush() },
    resolvePath: abs,
    startedAt,
    reload: () => reloadServer(handle, opts.loadConfig ?? (() => ({ config: structuredClone(config), baseDir, file: null })), log),
    get adminPort() {
      return admin?.port ?? null;
    },
    close,
  };
  if (config.admin.enabled) {
    try {
      // Loaded only when used: fastify and its plugins cost start-up time and memory a server without admin saves.
      admin = await (await import('./admin/admin-server.js')).startAdminServer({ server: handle, log });
    } catch (err) {
      await close(0);
      throw err;
    }
  }
  return handle;
}
