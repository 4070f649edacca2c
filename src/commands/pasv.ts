import { isIPv4 } from 'node:net';
import { FtpError } from '../errors.js';
import { pasvReplyText } from '../protocol/address-text.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 959 PASV. The 227 address is pasv.externalAddress behind NAT, else our end of the control connection. */
export const PASV: CommandSpec = {
  verb: 'PASV',
  syntax: 'PASV',
  availability: 'loggedIn',
  async run(s) {
    if (s.data.epsvAll) throw new FtpError(503, 'EPSV ALL in effect: use EPSV');
    const advertised = s.data.advertisedAddress();
    if (!isIPv4(advertised)) throw new FtpError(425, 'PASV needs an IPv4 address; use EPSV', { reason: 'pasv_ipv6' });
    const { port } = await s.data.openPassive();
    return { code: 227, text: pasvReplyText(advertised, port) };
  },
};
