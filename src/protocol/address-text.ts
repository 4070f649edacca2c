import { isIP, isIPv4 } from 'node:net';

/** Text of PASV/EPSV replies and parsing of PORT/EPRT arguments (RFC 959, RFC 2428). Pure. */

export function pasvReplyText(ipv4: string, port: number): string {
  const h = ipv4.split('.').join(',');
  return `Entering Passive Mode (${h},${port >> 8},${port & 0xff})`;
}

export function epsvReplyText(port: number): string {
  return `Entering Extended Passive Mode (|||${port}|)`;
}

/** "h1,h2,h3,h4,p1,p2" → address and port, or null when malformed. */
export function parsePortArg(arg: string): { host: string; port: number } | null {
  const parts = arg.trim().split(',');
  if (parts.length !== 6) return null;
  const nums = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (nums.some((n) => !(n >= 0 && n <= 255))) return null;
  const host = nums.slice(0, 4).join('.');
  const port = nums[4]! * 256 + nums[5]!;
  return isIPv4(host) && port > 0 ? { host, port } : null;
}

/** "|1|132.235.1.2|6275|" → address family, host, port (RFC 2428 §2), or null when malformed. */
export function parseEprtArg(arg: string): { family: 1 | 2; host: string; port: number } | null {
  const d = arg[0];
  if (d === undefined || d.charCodeAt(0) < 33 || d.charCodeAt(0) > 126) return null;
  const parts = arg.split(d);
  if (parts.length !== 5 || parts[0] !== '' || parts[4] !== '') return null;
  const family = parts[1] === '1' ? 1 : parts[1] === '2' ? 2 : null;
  const port = /^\d{1,5}$/.test(parts[3]!) ? Number(parts[3]) : NaN;
  if (family === null || !(port > 0 && port < 65536)) return null;
  // The host must be a literal address of the named family: a name would make the server resolve whatever it is told.
  if (isIP(parts[2]!) !== (family === 1 ? 4 : 6)) return null;
  return { family, host: parts[2]!, port };
}

/** The IPv4 address inside an IPv4-mapped IPv6 address, or the address itself. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
