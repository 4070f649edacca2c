import { effectiveUser, type Sourced } from '../access/effective.js';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/open-store.js';
import { POLICY_KEYS } from '../store/partner-model.js';
import { loadPartners, loadUserRuntime } from '../store/partner-repo.js';
import { findUsage } from '../store/quota-repo.js';

/** Server-wide settings a policy value falls back to when neither the user nor a group sets it. */
function defaultFor(key: (typeof POLICY_KEYS)[number], config: Config): string {
  switch (key) {
    case 'minTlsVersion':
      return `${config.tls.minVersion} (tls.minVersion)`;
    case 'uploadBytesPerSecond':
      return `${config.limits.uploadBytesPerSecond} (limits.uploadBytesPerSecond)`;
    case 'downloadBytesPerSecond':
      return `${config.limits.downloadBytesPerSecond} (limits.downloadBytesPerSecond)`;
    case 'maxSessions':
      return `${config.limits.maxLoginsPerUser} (limits.maxLoginsPerUser)`;
    case 'requireDataSessionReuse':
      return `${config.tls.requireDataSessionReuse} (tls.requireDataSessionReuse)`;
    case 'reuseException':
      return `none (tls.requireDataSessionReuse: ${config.tls.requireDataSessionReuse})`;
    case 'allowedNetworks':
      return 'any';
    case 'clientCertificates':
      return 'none needed';
    default:
      return 'none';
  }
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? 'never' : new Date(ms).toISOString());

function show(v: unknown): string {
  if (Array.isArray(v)) return v.join(',');
  if (v !== null && typeof v === 'object' && 'expiresAt' in v) {
    const e = v as { reason: string; expiresAt: number };
    return `until ${iso(e.expiresAt)}${e.expiresAt <= Date.now() ? ' (lapsed)' : ''}: ${e.reason}`;
  }
  return String(v);
}

/** `ftpsd user show`: every effective value of a user with its source, as lines. */
export async function describeUser(store: Store, name: string, config: Config, abs: (p: string) => string): Promise<string[] | null> {
  const set = await loadPartners(store.db, { user: name });
  const eff = effectiveUser(set, name);
  if (eff === null) return null;
  const runtime = await loadUserRuntime(store.db, name);
  const src = (s: Sourced<unknown>) => `(${s.from})`;
  const lines = [
    `user ${name}`,
    `  status       ${eff.disabled ? 'disabled' : 'enabled'}`,
    `  expires      ${eff.expiresAt === null ? 'never' : iso(eff.expiresAt)}${eff.expiresAt !== null && eff.expiresAt <= Date.now() ? ' (expired)' : ''}`,
    `  last login   ${iso(runtime?.lastLoginAt)}`,
    `  password     ${eff.passwordHash === null ? 'not set' : `set ${iso(runtime?.passwordChangedAt)}`}`,
    `  groups       ${eff.groups.length === 0 ? '(none)' : eff.groups.join(', ')}`,
    `  home         ${eff.home.value === null ? '(none: a virtual root holding only mounts)' : abs(eff.home.value)} ${src(eff.home)}`,
    '  mounts',
  ];
  for (const m of [...eff.mounts].reverse()) {
    const usage = await findUsage(store.db, m.scope);
    const quota = m.quotaBytes === null && m.quotaFiles === null ? '' : `, quota ${m.quotaBytes ?? '-'} bytes / ${m.quotaFiles ?? '-'} files`;
    const used = usage === null ? '' : `, used ${usage.bytes} bytes / ${usage.files} files`;
    const retention = m.retentionMaxAgeDays === null ? '' : `, retention ${m.retentionMaxAgeDays} days${m.retentionAfterDownload ? ' after download' : ''}`;
    lines.push(`    ${m.path} -> ${m.folder === '~home' ? 'home' : `folder ${m.folder}`} at ${abs(m.location)}${quota}${used}${retention} (${m.from})`);
  }
  lines.push('  permissions (longest path wins)');
  if (eff.permissions.length === 0) lines.push('    (none: nothing is allowed)');
  for (const r of [...eff.permissions].reverse()) lines.push(`    ${r.path}  ${r.permissions.length === 0 ? '(nothing)' : r.permissions.join(',')} (${r.from})`);
  lines.push('  policy');
  for (const key of POLICY_KEYS) {
    const v = eff.policy[key];
    lines.push(`    ${key.padEnd(22)} ${v.value === undefined ? `${defaultFor(key, config)} (default)` : `${show(v.value)} ${src(v)}`}`);
  }
  return lines;
}
