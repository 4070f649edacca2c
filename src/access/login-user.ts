import type { User } from '../auth/users-file.js';
import { AccessView } from './access-view.js';
import type { EffectiveUser } from './effective.js';
import type { ReuseException, TlsVersion } from '../store/partner-model.js';

/**
 * The user a session holds after PASS: the fields the FTP core has always read (home, networks, certificates, rates)
 * plus the access view of its virtual tree and the policy values the core does not know about.
 */
export interface LoginUser extends User {
  readonly view: AccessView;
  readonly minTlsVersion: TlsVersion | null;
  readonly maxSessions: number | null;
  readonly reuseException: ReuseException | null;
  readonly expiresAt: number | null;
}

export function toLoginUser(eff: EffectiveUser, resolveLocation: (p: string) => string): LoginUser {
  const view = new AccessView(eff);
  const p = eff.policy;
  const home = eff.mounts.find((m) => m.path === '/');
  return {
    name: eff.name,
    passwordHash: eff.passwordHash ?? '',
    home: home === undefined ? '' : resolveLocation(home.location),
    permissions: view.permissionsAt('/'),
    allowedNetworks: p.allowedNetworks.value ?? [],
    clientCertificates: (p.clientCertificates.value ?? []).map((f) => f.replace(/:/g, '').toLowerCase()),
    disabled: eff.disabled,
    uploadBytesPerSecond: p.uploadBytesPerSecond.value ?? null,
    downloadBytesPerSecond: p.downloadBytesPerSecond.value ?? null,
    requireDataSessionReuse: p.requireDataSessionReuse.value ?? null,
    view,
    minTlsVersion: p.minTlsVersion.value ?? null,
    maxSessions: p.maxSessions.value ?? null,
    reuseException: p.reuseException.value ?? null,
    expiresAt: eff.expiresAt,
  };
}

/** The access view of a logged-in user; a user built some other way gets its old whole-tree permissions. */
export function accessOf(user: User): AccessView {
  if ('view' in user && user.view instanceof AccessView) return user.view;
  return new AccessView({
    name: user.name,
    passwordHash: user.passwordHash,
    disabled: user.disabled,
    expiresAt: null,
    groups: [],
    home: { value: user.home, from: 'user' },
    mounts: [{ path: '/', folder: '~home', location: user.home, scope: `user:${user.name}`, quotaBytes: null, quotaFiles: null, retentionMaxAgeDays: null, retentionAfterDownload: false, from: 'user' }],
    permissions: [{ path: '/', permissions: [...user.permissions], from: 'user' }],
    policy: {} as EffectiveUser['policy'],
  });
}

export function isLoginUser(user: User): user is LoginUser {
  return 'view' in user && user.view instanceof AccessView;
}

/** True while a data-session-reuse exception is in force: it lapses by itself at its expiry. */
export function reuseWaived(user: User, now = Date.now()): boolean {
  return isLoginUser(user) && user.reuseException !== null && user.reuseException.expiresAt > now;
}
