import { accessOf } from '../access/login-user.js';
import type { Permission } from '../config/schema.js';
import type { Session } from '../control/session.js';
import { FtpError } from '../errors.js';
import type { FileInfo } from '../storage/backend.js';
import { sessionFacts } from './event-facts.js';

/** The client's argument as a virtual path inside the user's home (storage refuses anything that would leave it). */
export function resolveArg(s: Session, arg: string): string {
  return s.storage.resolve(s.cwd, arg);
}

/**
 * The user's permission at a virtual path (the longest permission path at or above it decides); denial is 550 (RFC
 * 959: action not taken) naming what is missing, with a log line.
 */
export function requirePermission(s: Session, perm: Permission, path = '/'): void {
  if (!accessOf(s.user).allows(path, perm)) {
    s.refusals.write('info', { event: 'permission_denied', user: s.user.name, permission: perm, path }, 'permission denied');
    throw new FtpError(550, `Permission denied: no ${perm} permission for ${path}`, { reason: 'permission_denied' });
  }
}

/** STOR/APPE: a new file needs `upload`, replacing or appending to an existing one `overwrite` (drop boxes have only the first). */
export async function requireUpload(s: Session, path: string): Promise<void> {
  const existing = await s.storage.stat(path).catch(() => null);
  requirePermission(s, existing === null ? 'upload' : 'overwrite', path);
}

/** SIZE and MDTM tell whether a file exists: they need `list` or `download` there, so a drop box reveals nothing. */
export function requireVisible(s: Session, path: string): void {
  const view = accessOf(s.user);
  if (!view.allows(path, 'list') && !view.allows(path, 'download')) requirePermission(s, 'list', path);
}

/** What SIZE, MDTM, HASH and RETR act on: a regular file (a directory or a device is 550 with reason not_file). */
export async function statRegularFile(s: Session, path: string): Promise<FileInfo> {
  const info = await s.storage.stat(path);
  if (info.type !== 'file') throw new FtpError(550, 'Not a regular file', { reason: 'not_file' });
  return info;
}

/** LIST/NLST/STAT take ls-style options such as "-la" that name no file; they are dropped. */
export function stripListOptions(arg: string): string {
  let rest = arg;
  while (/^-[A-Za-z]+(\s|$)/.test(rest)) rest = rest.replace(/^-[A-Za-z]+\s*/, '');
  return rest;
}

const FILE_OP_EVENTS = { delete: 'delete', rename: 'rename', mkdir: 'mkdir', rmdir: 'rmdir' } as const;

/** One audit record per file operation; the compliance trail. Deletes, renames, mkdir and rmdir are events too. */
export function auditFileOp(s: Session, op: string, fields: Record<string, unknown>): void {
  s.server.audit('file_op', { sid: s.id, ip: s.peerIp, user: s.user.name, op, ...fields });
  const event = FILE_OP_EVENTS[op as keyof typeof FILE_OP_EVENTS];
  if (event !== undefined) s.server.events.publish({ ...sessionFacts(s), event, path: fields.path as string, toPath: (fields.to as string | undefined) ?? null });
}
