import type { Permission } from '../config/schema.js';
import type { EntryType, FileInfo } from './backend.js';

/**
 * Pure formatting of directory listings and timestamps. Every time is UTC, like vsftpd with its default
 * `use_localtime=NO` and as RFC 3659 requires for MDTM/MLSx, so a listing never depends on the server's zone.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
/** `ls -l` (and vsftpd) print the time of day for files modified within about six months, else the year. */
const RECENT_MS = 182 * 24 * 3_600_000;
/** Width vsftpd pads the size column to; larger sizes just widen it, which every parser accepts. */
const SIZE_WIDTH = 8;

/** Names a listing can carry: a CR or LF would end the line and let a file name forge the next entry. */
export function isListableName(name: string): boolean {
  return !name.includes('\r') && !name.includes('\n');
}

/**
 * One `LIST` line as vsftpd prints it, which FileZilla, WinSCP, lftp and curl all parse:
 * `-rw-r--r--    1 ftp      ftp          1024 Nov 23 21:32 name`. Owner and group are always "ftp" so local uids
 * never leak; the link count is always 1. Symlinks show no "-> target" (the target may be outside the home).
 */
export function formatListLine(info: FileInfo, now: Date): string {
  const size = String(info.size).padStart(SIZE_WIDTH, ' ');
  return `${modeString(info.type, info.mode)}    1 ftp      ftp      ${size} ${listDate(info.mtime, now)} ${info.name}`;
}

function modeString(type: EntryType, mode: number): string {
  const kind = type === 'dir' ? 'd' : type === 'link' ? 'l' : '-';
  const bit = (mask: number, ch: string) => ((mode & mask) !== 0 ? ch : '-');
  const exec = (x: number, special: number, on: string, off: string) => {
    const hasX = (mode & x) !== 0;
    if ((mode & special) !== 0) return hasX ? on : off;
    return hasX ? 'x' : '-';
  };
  return (
    kind +
    bit(0o400, 'r') + bit(0o200, 'w') + exec(0o100, 0o4000, 's', 'S') +
    bit(0o040, 'r') + bit(0o020, 'w') + exec(0o010, 0o2000, 's', 'S') +
    bit(0o004, 'r') + bit(0o002, 'w') + exec(0o001, 0o1000, 't', 'T')
  );
}

function listDate(mtime: Date, now: Date): string {
  const month = MONTHS[mtime.getUTCMonth()] ?? 'Jan';
  // vsftpd prints a zero-padded day (`%b %d`); ProFTPD a space-padded one; clients read both.
  const day = pad2(mtime.getUTCDate());
  const age = now.getTime() - mtime.getTime();
  // Future dates and old ones show the year, as ls does.
  if (age < 0 || age > RECENT_MS) return `${month} ${day}  ${mtime.getUTCFullYear()}`;
  return `${month} ${day} ${pad2(mtime.getUTCHours())}:${pad2(mtime.getUTCMinutes())}`;
}

/** The facts `formatMlsxFacts` emits, for the FEAT line `MLST type*;size*;modify*;perm*;unique*;`. */
export const MLSX_FACTS = ['type', 'size', 'modify', 'perm', 'unique'] as const;

export interface MlsxOptions {
  /** RFC 3659 7.5.1: MLSD names the listed directory itself `cdir` and its parent `pdir`. */
  role?: 'cdir' | 'pdir';
  /** Pathname to print instead of `info.name` (MLST prints the full path). */
  name?: string;
}

/**
 * RFC 3659 7 facts line: `type=file;size=1024;modify=20261123213200;perm=adfrw;unique=803g2a; name`. Exactly one
 * space separates the facts from the pathname. Unresolvable symlinks are `OS.unix=symlink`, as ProFTPD reports them.
 */
export function formatMlsxFacts(info: FileInfo, perm: string, options: MlsxOptions = {}): string {
  const type = options.role ?? mlsxType(info.type);
  const size = info.type === 'file' ? `size=${info.size};` : '';
  return `type=${type};${size}modify=${formatMdtm(info.mtime)};perm=${perm};unique=${info.unique}; ${options.name ?? info.name}`;
}

function mlsxType(type: EntryType): string {
  switch (type) {
    case 'file':
      return 'file';
    case 'dir':
      return 'dir';
    case 'link':
      return 'OS.unix=symlink';
    case 'other':
      return 'OS.unix=special';
  }
}

/**
 * RFC 3659 7.5.5 perm fact from the user's permissions. Files: a (APPE), d (DELE), f (RNFR), r (RETR), w (STOR).
 * Directories: c (STOR inside), d (RMD), e (CWD, always), f (RNFR), l (LIST), m (MKD), p (delete contents).
 * A symlink that cannot be followed can only be deleted or renamed.
 */
export function mlsxPerm(type: EntryType | 'cdir' | 'pdir', perms: ReadonlySet<Permission>): string {
  const has = (p: Permission, letter: string) => (perms.has(p) ? letter : '');
  if (type === 'file') return has('upload', 'a') + has('delete', 'd') + has('rename', 'f') + has('download', 'r') + has('upload', 'w');
  if (type === 'dir' || type === 'cdir' || type === 'pdir') {
    return has('upload', 'c') + has('delete', 'd') + 'e' + has('rename', 'f') + has('list', 'l') + has('mkdir', 'm') + has('delete', 'p');
  }
  return has('delete', 'd') + has('rename', 'f');
}

/** RFC 3659 2.3 time-val `YYYYMMDDHHMMSS`, UTC. */
export function formatMdtm(date: Date): string {
  return (
    String(date.getUTCFullYear()).padStart(4, '0') +
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds())
  );
}

const TIME_VAL = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?$/;

/**
 * Parses an RFC 3659 time-val (`YYYYMMDDHHMMSS[.fraction]`, UTC) strictly: every field in range (second 60 is a
 * leap second and accepted), nothing before or after. The fraction keeps millisecond precision. Null when invalid.
 */
export function parseMfmtTime(s: string): Date | null {
  const m = TIME_VAL.exec(s);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
