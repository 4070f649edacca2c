import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/**
 * RFC 959 §3.1.1 / §4.1.2: A (with optional N format) and I / L 8 are supported. The rest of what the RFC defines
 * (EBCDIC, Telnet and ASA formats, other byte sizes) is 504 "not implemented for that parameter"; only what the RFC's
 * grammar does not allow is a 501 syntax error. Clients probe with these and fall back on 504, but some abort on 501.
 */
export const TYPE: CommandSpec = {
  verb: 'TYPE',
  syntax: 'TYPE A|I',
  availability: 'any',
  needsArg: true,
  run(s, arg) {
    const t = arg.trim().toUpperCase().replace(/\s+/g, ' ');
    if (t === 'A' || t === 'A N') {
      s.params = { ...s.params, type: 'A' };
      return { code: 200, text: 'Switching to ASCII mode' };
    }
    if (t === 'I' || t === 'L 8') {
      s.params = { ...s.params, type: 'I' };
      return { code: 200, text: 'Switching to Binary mode' };
    }
    if (/^(A [TC]|E( [NTC])?|L \d{1,3})$/.test(t)) throw new FtpError(504, `TYPE ${t} not implemented; use TYPE A or TYPE I`, { reason: 'type_unsupported' });
    throw new FtpError(501, 'Syntax: TYPE A [N] | E [N|T|C] | I | L <byte size>', { reason: 'type_syntax' });
  },
};
