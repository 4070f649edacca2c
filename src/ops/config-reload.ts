import type { Config } from '../config/schema.js';

/**
 * Settings a running server reads each time it needs them, so a new value takes effect on SIGHUP for the next
 * session, command or transfer. Everything else is bound at start (sockets, pools, the users file, the audit file,
 * the defender, ACME, metrics) and is reported as needing a restart instead of being half applied.
 */
const RUNTIME_KEYS: readonly string[] = [
  'listen.banner',
  'pasv.externalAddress',
  'pasv.addressOverrides',
  'pasv.acceptTimeoutMs',
  'pasv.idleListenerTimeoutMs',
  'pasv.maxListenersPerUser',
  'pasv.maxListenersPerAddress',
  'pasv.epsv',
  'tls.certFile',
  'tls.keyFile',
  'tls.minVersion',
  'tls.ciphers',
  'tls.requireForLogin',
  'tls.requireForData',
  'tls.requireDataSessionReuse',
  'tls.handshakeTimeoutMs',
  'tls.sessionTimeoutSeconds',
  'tls.siblingLoginWaitMs',
  'tls.siblingTicketRetentionMs',
  'tls.selfSignedDir',
  'tls.selfSignedNames',
  'users.demoHome',
  'log.level',
  'log.refusalsPerSession',
  'log.refusalSummaryIntervalMs',
  'limits.',
  'storage.',
  'housekeeping.',
  'events.maxAttempts',
  'events.retryMinMs',
  'events.retryMaxMs',
  'events.webhookTimeoutMs',
  'events.commandTimeoutMs',
  'events.commandOutputMaxBytes',
  'events.checkTimeoutMs',
  'events.checkTimeoutResult',
  'events.quarantineDir',
  'events.keepDeliveredMs',
  'activeMode.',
  'shutdown.',
  'admin.tokenIdleTimeoutMs',
  'admin.tokenMaxAgeMs',
  'admin.failedLoginDelayMs',
  'admin.auditSearchMaxResults',
];

/** Bound at start even inside a section that otherwise reloads. */
const RESTART_KEYS: readonly string[] = [
  'limits.passwordHashConcurrency',
  'limits.passwordHashQueueMax',
  'limits.passwordHashReservedQueue',
  'limits.accountFailuresBeforeThrottle',
  'limits.accountFailureWindowMs',
  'limits.digestWorkers',
];

export interface ConfigChanges {
  /** Dotted keys whose new value is now in effect. */
  applied: string[];
  /** Dotted keys whose new value waits for a restart; the running value is kept. */
  needsRestart: string[];
}

/** Dotted paths of the leaves (arrays count as one leaf) that differ between two configurations. */
export function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (isRecord(a) && isRecord(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => changedKeys(a[k], b[k], prefix === '' ? k : `${prefix}.${k}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

export function isRuntimeKey(key: string): boolean {
  if (RESTART_KEYS.includes(key)) return false;
  return RUNTIME_KEYS.some((k) => (k.endsWith('.') ? key.startsWith(k) : key === k));
}

/**
 * Copies the reloadable changes of `next` into `running` in place (every part of the server holds this one object),
 * and leaves the rest as it is.
 */
export function applyConfigChanges(running: Config, next: Config): ConfigChanges {
  const changes: ConfigChanges = { applied: [], needsRestart: [] };
  for (const key of changedKeys(running, next)) {
    if (!isRuntimeKey(key)) {
      changes.needsRestart.push(key);
      continue;
    }
    setPath(running, key, structuredClone(getPath(next, key)));
    changes.applied.push(key);
  }
  return changes;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getPath(obj: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((node, part) => (isRecord(node) ? node[part] : undefined), obj);
}

function setPath(obj: unknown, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = obj;
  for (const part of parts.slice(0, -1)) {
    if (!isRecord(node)) return;
    node = node[part];
  }
  if (isRecord(node)) node[parts[parts.length - 1]!] = value;
}
