import { FtpError } from '../errors.js';
import { isUploadArtifact } from './upload-names.js';

/**
 * Virtual paths are absolute POSIX paths inside a user's home: "/" is the home. This module is pure: it turns what a
 * client sent into such a path or refuses it, and never touches the disk (symlinks are the backend's job).
 */
export interface PathLimits {
  /** Longest normalised virtual path, in UTF-8 bytes. */
  maxPathBytes: number;
  /** Longest single name, in UTF-8 bytes. */
  maxNameBytes: number;
}

// A lone UTF-16 surrogate cannot be stored as UTF-8: the file system would get U+FFFD, a different name.
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Normalises `clientPath` against `cwd` (itself a normalised virtual path). An absolute client path starts at the
 * home. `.` and empty segments vanish, `..` removes the previous segment and stops at "/" (as every FTP server
 * does: CDUP at the root stays at the root). Throws FtpError 553 (RFC 959: "File name not allowed") for what the
 * backend must never see.
 */
export function resolveVirtualPath(cwd: string, clientPath: string, limits: PathLimits): string {
  const segments = clientPath.startsWith('/') ? [] : splitVirtual(cwd);
  for (const segment of clientPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      segments.pop();
      continue;
    }
    checkName(segment, limits.maxNameBytes);
    segments.push(segment);
  }
  const path = `/${segments.join('/')}`;
  if (Buffer.byteLength(path) > limits.maxPathBytes) throw new FtpError(553, 'Path too long', { reason: 'path_too_long' });
  return path;
}

/** Why a name may not be used, or null. Listings skip names a client could not address again. */
export function nameProblem(name: string, maxNameBytes: number): string | null {
  if (name.includes('\0')) return 'nul_in_name';
  // RFC 959 replies and listings are CRLF-framed; a name holding CR or LF could forge lines.
  if (name.includes('\r') || name.includes('\n')) return 'crlf_in_name';
  // Backslash is a legal byte on Linux but a separator to Windows clients (`..\..\etc`): refuse it outright.
  if (name.includes('\\')) return 'backslash_in_name';
  if (LONE_SURROGATE.test(name)) return 'invalid_utf8';
  if (Buffer.byteLength(name) > maxNameBytes) return 'name_too_long';
  if (isUploadArtifact(name)) return 'reserved_name';
  return null;
}

function checkName(name: string, maxNameBytes: number): void {
  const problem = nameProblem(name, maxNameBytes);
  if (problem !== null) throw new FtpError(553, problem === 'name_too_long' ? 'File name too long' : 'File name not allowed', { reason: problem });
}

function splitVirtual(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** "/a/b" → "/a"; "/a" → "/"; "/" → "/". */
export function virtualParent(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Last segment; "/" for the home itself. */
export function virtualBaseName(path: string): string {
  if (path === '/') return '/';
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Joins a normalised directory and a single already-checked name. */
export function virtualJoin(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** True when `path` is `ancestor` or lies below it. */
export function isVirtualWithin(path: string, ancestor: string): boolean {
  return ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`);
}
