/**
 * Reads what a ClientHello offers for resumption, to tell a client that offered no session at all (plain ftplib,
 * misconfigured clients) from one that offered a session we did not issue (another control session's ticket: a
 * hijack attempt). Best effort on the first TLS record; pure.
 */
export interface ResumptionOffer {
  /** TLS 1.3 pre_shared_key extension present. */
  psk: boolean;
  /** TLS 1.2 session_ticket extension with a ticket in it. */
  ticket: boolean;
  /** Legacy session id length (TLS 1.3 clients send a random one for middlebox compatibility, so it proves little). */
  sessionIdLength: number;
  /** supported_versions lists TLS 1.3. */
  offersTls13: boolean;
}

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SESSION_TICKET = 35;
const EXT_PRE_SHARED_KEY = 41;
const EXT_SUPPORTED_VERSIONS = 43;

export function readResumptionOffer(buf: Buffer): ResumptionOffer | null {
  try {
    if (buf.length < 9 || buf[0] !== HANDSHAKE || buf[5] !== CLIENT_HELLO) return null;
    const recordEnd = Math.min(buf.length, 5 + buf.readUInt16BE(3));
    let p = 9 + 2 + 32; // handshake header (4) after record header (5), client_version, random
    const sidLen = buf[p]!;
    p += 1 + sidLen;
    p += 2 + buf.readUInt16BE(p); // cipher suites
    p += 1 + buf[p]!; // compression methods
    const offer: ResumptionOffer = { psk: false, ticket: false, sessionIdLength: sidLen, offersTls13: false };
    if (p + 2 > recordEnd) return offer;
    const extEnd = Math.min(recordEnd, p + 2 + buf.readUInt16BE(p));
    p += 2;
    while (p + 4 <= extEnd) {
      const type = buf.readUInt16BE(p);
      const len = buf.readUInt16BE(p + 2);
      const body = p + 4;
      if (type === EXT_PRE_SHARED_KEY) offer.psk = true;
      if (type === EXT_SESSION_TICKET && len > 0) offer.ticket = true;
      if (type === EXT_SUPPORTED_VERSIONS && body < extEnd) {
        for (let v = body + 1; v + 1 < body + 1 + buf[body]! && v + 1 < extEnd; v += 2) {
          if (buf.readUInt16BE(v) === 0x0304) offer.offersTls13 = true;
        }
      }
      p = body + len;
    }
    return offer;
  } catch {
    return null;
  }
}

export function offeredResumption(offer: ResumptionOffer | null): boolean {
  if (offer === null) return false;
  return offer.psk || offer.ticket || (!offer.offersTls13 && offer.sessionIdLength > 0);
}
