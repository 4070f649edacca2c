import { isIP } from 'node:net';

// IP addresses and CIDR blocks as numbers, so matching is arithmetic rather than string prefixes. IPv4-mapped IPv6
// addresses (RFC 4291 section 2.5.5.2, ::ffff:a.b.c.d), which a dual-stack listener reports for IPv4 clients, are
// treated as the IPv4 address they carry: ::ffff:127.0.0.1 is 127.0.0.1 and lies in 127.0.0.0/8.

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  /** The network address, host bits cleared. */
  network: bigint;
  prefix: number;
}

const WIDTH: Record<IpFamily, number> = { 4: 32, 6: 128 };

/**
 * Cheap normalisation for addresses Node reports (socket.remoteAddress is already canonical): strips the IPv4-mapped
 * prefix and lowercases. Used on the accept path, where a full parse would be wasted work.
 */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7);
  return lower;
}

/** Parses an IPv4 or IPv6 address (a zone suffix such as %eth0 is ignored); null when it is not one. */
export function parseIp(text: string): IpAddress | null {
  const zone = text.indexOf('%');
  const addr = zone === -1 ? text : text.slice(0, zone);
  const family = isIP(addr);
  if (family === 4) return { family: 4, value: parseV4(addr) };
  if (family !== 6) return null;
  const value = parseV6(addr);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** The canonical text of an address (RFC 5952 for IPv6; mapped IPv4 as dotted quad); null when it is not one. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip === null ? null : formatIp(ip);
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return formatV4(ip.value);
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 section 4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Parses `203.0.113.0/24`, `2001:db8::/32` or a single address (a host route). Host bits are cleared, so
 * 203.0.113.9/24 means 203.0.113.0/24. An IPv4-mapped block such as ::ffff:10.0.0.0/104 becomes 10.0.0.0/8.
 */
export function parseCidr(text: string): Cidr | null {
  const parts = text.trim().split('/');
  if (parts.length > 2) return null;
  const [addrText, bitsText] = parts as [string, string | undefined];
  if (addrText.includes('%')) return null;
  const family = isIP(addrText);
  if (family !== 4 && family !== 6) return null;
  const width = WIDTH[family];
  let prefix = width;
  if (bitsText !== undefined) {
    if (!/^\d{1,3}$/.test(bitsText)) return null;
    prefix = Number(bitsText);
    if (prefix > width) return null;
  }
  let value = family === 4 ? parseV4(addrText) : parseV6(addrText);
  let fam: IpFamily = family;
  if (fam === 6 && prefix >= 96 && value >> 32n === 0xffffn) {
    fam = 4;
    value &= 0xffffffffn;
    prefix -= 96;
  }
  return { family: fam, network: value & mask(fam, prefix), prefix };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  return cidr.family === ip.family && (ip.value & mask(cidr.family, cidr.prefix)) === cidr.network;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

/** A set of CIDR blocks; `has` answers whether an address falls in any of them. */
export class CidrSet {
  readonly #blocks: readonly Cidr[];

  /** Throws a TypeError naming the first entry that is not a CIDR. */
  constructor(entries: readonly string[]) {
    this.#blocks = entries.map((entry) => {
      const cidr = parseCidr(entry);
      if (cidr === null) throw new TypeError(`not a CIDR block: ${entry}`);
      return cidr;
    });
  }

  get size(): number {
    return this.#blocks.length;
  }

  has(ip: string | IpAddress): boolean {
    if (this.#blocks.length === 0) return false;
    const addr = typeof ip === 'string' ? parseIp(ip) : ip;
    if (addr === null) return false;
    return this.#blocks.some((b) => cidrContains(b, addr));
  }
}

function mask(family: IpFamily, prefix: number): bigint {
  const width = BigInt(WIDTH[family]);
  const all = (1n << width) - 1n;
  return (all << (width - BigInt(prefix))) & all;
}

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** Expects text that net.isIP already accepted as IPv6. */
function parseV6(text: string): bigint {
  let tail: number[] = [];
  let body = text;
  const lastColon = body.lastIndexOf(':');
  if (body.includes('.', lastColon)) {
    // Embedded IPv4 in the last 32 bits (RFC 4291 section 2.2, form 3).
    const v4 = parseV4(body.slice(lastColon + 1));
    tail = [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    body = body.slice(0, lastColon + 1); // ends in ':'; keep a '::' whole
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const [headText, restText] = body.split('::') as [string, string | undefined];
  const head = headText === '' ? [] : headText.split(':').map((g) => parseInt(g, 16));
  const rest = restText === undefined || restText === '' ? [] : restText.split(':').map((g) => parseInt(g, 16));
  const fill = restText === undefined ? 0 : 8 - head.length - rest.length - tail.length;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}
