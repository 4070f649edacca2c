import { isIPv6 } from 'node:net';
import { FtpError } from '../errors.js';
import { epsvReplyText } from '../protocol/address-text.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 2428 §3: only the port is sent, so NAT address rewriting is never needed. */
export const EPSV: CommandSpec = {
  verb: 'EPSV',
  syntax: 'EPSV [1|2|ALL]',
  availability: 'loggedIn',
  feat: (s) => (s.server.config.pasv.epsv ? 'EPSV' : null),
  async run(s, arg) {
    // pasv.epsv off (nodes behind a balancer that advertise their own address): a 502 makes clients fall back to PASV,
    // whose reply names the node; EPSV's would send them to the balancer's address.
    if (!s.server.config.pasv.epsv) throw new FtpError(502, 'EPSV not available here, use PASV', { reason: 'epsv_off' });
    const a = arg.trim().toUpperCase();
    if (a === 'ALL') {
      s.data.epsvAll = true;
      return { code: 200, text: 'EPSV ALL ok' };
    }
    const family = isIPv6(s.localAddress) ? '2' : '1';
    if (a !== '' && a !== family) {
      // RFC 2428 §3: a protocol number we do not serve on this connection is 522 naming the one we do.
      if (/^\d{1,3}$/.test(a)) throw new FtpError(522, `Network protocol not supported, use (${family})`, { reason: 'epsv_family' });
      throw new FtpError(501, 'Syntax: EPSV [1|2|ALL]');
    }
    const { port } = await s.data.openPassive();
    return { code: 229, text: epsvReplyText(port) };
  },
};
