import type { Permission } from '../config/schema.js';
import type { Session } from '../control/session.js';
import { FtpError } from '../errors.js';

/** The client's argument as a virtual path inside the user's home (storage refuses anything that would leave it). */
export function resolveArg(s: Session, arg: string): string {
  return s.storage.resolve(s.cwd, arg);
}

/** Per-user permissions from the users file; denial is 550 (RFC 959: action not taken). */
export function requirePermission(s: Session, perm: Permission): void {
  if (!s.user.permissions.has(perm)) {
    s.refusals.write('info', { event: 'permission_denied', user: s.user.name, permission: perm }, 'permission denied');
    throw new FtpError(550, 'Permission denied', { reason: 'permission_denied' });
  }
}

/** LIST/NLST/STAT take ls-style options such as "-la" that name no file; they are dropped. */
export function stripListOptions(arg: string): string {
  let rest = arg;
  while (/^-[A-Za-z]+(\s|$)/.test(rest)) rest = rest.replace(/^-[A-Za-z]+\s*/, '');
  return rest;
}

/** One audit record per file operation; the compliance trail. */
export function auditFileOp(s: Session, op: string, fields: Record<string, unknown>): void {
  s.server.audit('file_op', { sid: s.id, ip: s.peerIp, user: s.user.name, op, ...fields });
}
