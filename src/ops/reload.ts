import type { Logger } from 'pino';
import { ConfigError, type LoadedConfig } from '../config/load.js';
import type { ServerHandle } from '../server.js';
import { applyConfigChanges, type ConfigChanges } from './config-reload.js';

export type ConfigReloadOutcome =
  | { kind: 'applied'; changes: ConfigChanges }
  | { kind: 'invalid'; problems: string[] };

export type UsersReloadOutcome = { kind: 'reloaded'; added: string[]; removed: string[] } | { kind: 'invalid'; problem: string };

export interface ReloadReport {
  config: ConfigReloadOutcome;
  users: UsersReloadOutcome;
  certificateChanged: boolean;
}

/**
 * SIGHUP: re-reads the configuration file, the users file and the certificate without touching open sessions. An
 * invalid file is reported and the running settings, users or certificate stay as they were; each of the three is
 * independent of the others.
 */
export async function reloadServer(server: ServerHandle, loadNext: () => LoadedConfig, log: Logger): Promise<ReloadReport> {
  let config: ConfigReloadOutcome;
  try {
    const next = loadNext().config;
    const changes = applyConfigChanges(server.config, next);
    if (changes.applied.includes('log.level')) log.level = server.config.log.level;
    config = { kind: 'applied', changes };
    log.info({ event: 'config_reloaded', applied: changes.applied, needsRestart: changes.needsRestart }, 'configuration reloaded');
    if (changes.needsRestart.length > 0) {
      log.warn({ event: 'config_needs_restart', keys: changes.needsRestart }, 'changed settings need a restart to take effect; running values kept');
    }
  } catch (err) {
    const problems = err instanceof ConfigError ? [err.message] : [(err as Error).message];
    config = { kind: 'invalid', problems };
    log.error({ event: 'config_reload_failed', problems }, 'configuration invalid; keeping the running configuration');
  }

  let users: UsersReloadOutcome;
  try {
    const diff = await server.reloadUsers();
    users = { kind: 'reloaded', ...diff };
    log.info({ event: 'users_reloaded', added: diff.added, removed: diff.removed, count: server.users.size }, 'users reloaded');
  } catch (err) {
    users = { kind: 'invalid', problem: (err as Error).message };
    log.error({ event: 'users_reload_failed', problem: users.problem }, 'users could not be read from the store; keeping the previous ones');
  }

  const certificateChanged = await server.reloadCertificate();
  if (!certificateChanged) log.info({ event: 'certificate_unchanged' }, 'certificate unchanged');
  return { config, users, certificateChanged };
}
