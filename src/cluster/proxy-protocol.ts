import { isIP } from 'node:net';

/**
 * The PROXY protocol header a TCP load balancer (HAProxy `send-proxy` / `send-proxy-v2`) puts in front of a
 * connection, so the server learns the client's real address. Pure: bytes in, a verdict out; no socket here.
 * Specification: haproxy's doc/proxy-protocol.txt (version 1 text, version 2 binary).
 */
export type ProxyHeader =
  /** The balancer relays a client: `source` is the client's address and port. */
  | { kind: 'proxied'; source: { ip: string; port: number }; consumed: number }
  /** The balancer speaks for itself (health checks: v2 LOCAL, v1 UNKNOWN): keep the connection's own address. */
  | { kind: 'local'; consumed: number };

export type ProxyParse = { kind: 'incomplete' } | { kind: 'invalid'; reason: string } | ProxyHeader;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** Version 1 headers are at most 107 bytes including CRLF. */
export const V1_MAX_BYTES = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
/** A v2 header carries addresses and optional TLVs; anything near this size is not a balancer talking. */
export const V2_MAX_BYTES = 16 + 536;

/** Parses the header at the start of `buf`. `incomplete` means: read more bytes, then call again. */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (startsWithPrefixOf(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? { kind: 'incomplete' } : parseV2(buf);
  if (startsWithPrefixOf(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { kind: 'incomplete' } : parseV1(buf);
  return { kind: 'invalid', reason: 'no_proxy_header' };
}

/** True when `buf` and `prefix` agree on their common length. */
function startsWithPrefixOf(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyParse {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) return buf.length >= V1_MAX_BYTES ? { kind: 'invalid', reason: 'v1_too_long' } : { kind: 'incomplete' };
  if (end + 2 > V1_MAX_BYTES) return { kind: 'invalid', reason: 'v1_too_long' };
  const consumed = end + 2;
  const parts = buf.subarray(0, end).toString('latin1').split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'local', consumed };
  if (parts.length !== 6) return { kind: 'invalid', reason: 'v1_fields' };
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) return { kind: 'invalid', reason: 'v1_protocol' };
  if (isIP(src) !== family || isIP(dst) !== family) return { kind: 'invalid', reason: 'v1_address' };
  const port = v1Port(sport);
  if (port === null || v1Port(dport) === null) return { kind: 'invalid', reason: 'v1_port' };
  return { kind: 'proxied', source: { ip: src, port }, consumed };
}

function v1Port(text: string): number | null {
  // The specification forbids leading zeros and signs.
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

function parseV2(buf: Buffer): ProxyParse {
  if (buf.length < V2_FIXED_BYTES) return { kind: 'incomplete' };
  const verCmd = buf[12]!;
  const famProto = buf[13]!;
  const length = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'v2_version' };
  if (V2_FIXED_BYTES + length > V2_MAX_BYTES) return { kind: 'invalid', reason: 'v2_too_long' };
  if (buf.length < V2_FIXED_BYTES + length) return { kind: 'incomplete' };
  const consumed = V2_FIXED_BYTES + length;
  const command = verCmd & 0x0f;
  if (command === 0x0) return { kind: 'local', consumed };
  if (command !== 0x1) return { kind: 'invalid', reason: 'v2_command' };
  const body = buf.subarray(V2_FIXED_BYTES, consumed);
  switch (famProto) {
    case 0x11: // TCP over IPv4: src addr, dst addr (4 bytes each), src port, dst port
      if (body.length < 12) return { kind: 'invalid', reason: 'v2_address_length' };
      return { kind: 'proxied', source: { ip: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) }, consumed };
    case 0x21: // TCP over IPv6: 16 bytes each
      if (body.length < 36) return { kind: 'invalid', reason: 'v2_address_length' };
      return { kind: 'proxied', source: { ip: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(32) }, consumed };
    case 0x00: // UNSPEC: the balancer does not know; keep the connection's own address
      return { kind: 'local', consumed };
    default:
      return { kind: 'invalid', reason: 'v2_family' };
  }
}

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups, as the canonical text form does (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

/** The most bytes a header can take before the parser decides: what a reader may buffer. */
export const PROXY_HEADER_MAX_BYTES = Math.max(V1_MAX_BYTES, V2_MAX_BYTES);
