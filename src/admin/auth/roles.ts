import type { AdminRole } from '../../store/schema.js';

// What each role may do. Every route names the one access it needs; nothing else decides.
//   read    everything that changes nothing (sessions, partners, bans, quota, certificates, configuration)
//   kick    close a live session
//   unban   lift a ban
//   retry   send failed event deliveries again
//   audit   search the audit trail and verify its chain
//   manage  every change (partners, bans, accounts, reload, renewals, retention)
//   self    one's own password, second factor and API keys

export type Access = 'read' | 'kick' | 'unban' | 'retry' | 'audit' | 'manage' | 'self';

export const ROLES: readonly AdminRole[] = ['admin', 'operator', 'auditor'];

const GRANTS: Record<AdminRole, ReadonlySet<Access>> = {
  admin: new Set(['read', 'kick', 'unban', 'retry', 'audit', 'manage', 'self']),
  operator: new Set(['read', 'kick', 'unban', 'retry', 'self']),
  auditor: new Set(['read', 'audit', 'self']),
};

export function may(role: AdminRole, access: Access): boolean {
  return GRANTS[role].has(access);
}
