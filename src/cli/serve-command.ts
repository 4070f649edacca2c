import type { Command } from 'commander';
import { resolvePath, type LoadedConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { PrometheusMetrics } from '../metrics/prometheus-metrics.js';
import { reloadServer } from '../ops/reload.js';
import { startServer, type ServerHandle } from '../server.js';
import { resolveBansFile } from '../defender/ban-file.js';
import { ensureDemoUser, ensureFirstAdmin, importLegacyFiles } from '../partners/first-start.js';
import { openStore, redactUrl, storeOptions } from '../store/open-store.js';
import type { Logger } from 'pino';

export interface ServeDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

export function registerServeCommands(program: Command, deps: ServeDeps): void {
  program
    .command('check-config')
    .description('validate the configuration and print the effective settings')
    .option('-c, --config <file>', 'configuration file (default: config/ftpsd.yaml if present, else embedded defaults)')
    .action((opts: { config?: string }) => {
      const { config, file } = deps.loadConfig(opts.config);
      console.log(`configuration ${file ?? '(embedded defaults)'} is valid`);
      // Secrets (the ACME EAB key) are not echoed into terminals and CI logs.
      const shown = { ...config, acme: { ...config.acme, eab: { ...config.acme.eab, hmacKey: config.acme.eab.hmacKey === '' ? '' : '[redacted]' } }, store: { ...config.store, url: config.store.url === '' ? '' : redactUrl(config.store.url) } };
      console.log(JSON.stringify(shown, null, 2));
    });

  program
    .command('serve')
    .description('run the server (SIGTERM/SIGINT: graceful stop; SIGHUP: reload configuration, users and certificate)')
    .option('-c, --config <file>', 'configuration file (default: config/ftpsd.yaml if present, else embedded defaults)')
    .action(async (opts: { config?: string }) => {
      const loaded = deps.loadConfig(opts.config);
      const { config, baseDir } = loaded;
      const log = createLogger(config.log.level);
      const usersFile = resolvePath(baseDir, config.users.file);
      const store = await openStore(storeOptions(config, baseDir));
      // An older version's users file becomes the store's users once; with no users at all, a demo user is made.
      const imported = await importLegacyFiles(store, { usersFile, bansFile: resolveBansFile(config, baseDir) });
      if (imported.importedUsers !== null && imported.importedUsers.length > 0) {
        process.stderr.write(`  Imported ${imported.importedUsers.length} users from ${usersFile} into the store ${store.location}; manage them with \`ftpsd user\` and \`ftpsd apply\` from now on.\n`);
      }
      const demoPassword = await ensureDemoUser(store, config.users.demoHome);
      if (demoPassword !== null) {
        // Shown once; only its argon2id hash is stored.
        process.stderr.write(
          `\n  First start: created user "demo" (home ${config.users.demoHome}) in ${store.location}\n  Password: ${demoPassword}\n  Shown only now. Change it with: npx ftpsd user passwd demo\n\n`,
        );
        log.info({ event: 'demo_user_created', store: store.location }, 'demo user created');
      }
      const adminPassword = config.admin.enabled ? await ensureFirstAdmin(store) : null;
      const metrics = config.metrics.enabled ? new PrometheusMetrics() : undefined;
      const server = await startServer({ config, baseDir, log, metrics, store, loadConfig: () => deps.loadConfig(opts.config) });
      const implicit = server.implicitPort === null ? '' : ` and ${config.implicit.host}:${server.implicitPort} (implicit FTPS: TLS at connect)`;
      process.stderr.write(`  ftpsd listening on ${config.listen.host}:${server.port} (explicit FTPS: AUTH TLS)${implicit}, passive ports ${config.pasv.minPort}-${config.pasv.maxPort}\n`);
      if (server.metricsPort !== null) process.stderr.write(`  metrics on http://${config.metrics.host}:${server.metricsPort}/metrics (/healthz, /readyz)\n`);
      if (server.adminPort !== null) {
        const url = `https://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${server.adminPort}/`;
        process.stderr.write(`  admin on ${url} (web admin; REST API under ${url}api/v1, OpenAPI at ${url}api/v1/openapi.json)\n`);
        if (adminPassword !== null) {
          // Shown once; only its argon2id hash is stored, and it must be changed at the first login.
          process.stderr.write(`\n  First start: created admin account "admin"\n  One-time password: ${adminPassword}\n  Log in at ${url} and choose a new password.\n\n`);
          log.info({ event: 'first_admin_created', store: store.location }, 'first admin account created');
        }
      }
      // The file is read again on SIGHUP, as named at start (or found the same way).
      handleSignals(server, () => deps.loadConfig(opts.config), log);
    });
}

/**
 * SIGTERM/SIGINT: stop accepting, 421 to idle sessions, running transfers get shutdown.graceMs, then exit 0. A second
 * signal exits at once (uploads are atomic, so an interrupted one leaves no partial file under its name).
 * SIGHUP: reload configuration, users and certificate; reloads run one at a time.
 */
function handleSignals(server: ServerHandle, loadNext: () => LoadedConfig, log: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ event: 'signal', signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    const graceMs = server.config.shutdown.graceMs;
    log.info({ event: 'signal', signal, graceMs, sessions: server.sessionCount() }, 'shutting down');
    server.close(graceMs).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  let reloading: Promise<unknown> = Promise.resolve();
  process.on('SIGHUP', () => {
    if (stopping) return;
    log.info({ event: 'signal', signal: 'SIGHUP' }, 'reloading configuration, users and certificate');
    reloading = reloading.then(() => reloadServer(server, loadNext, log)).catch((err: unknown) => log.error({ err }, 'reload failed'));
  });
}
