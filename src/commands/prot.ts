import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 2228 §3 / RFC 4217 §9: P (private) or C (clear, only when policy allows clear data). */
export const PROT: CommandSpec = {
  verb: 'PROT',
  syntax: 'PROT P|C',
  availability: 'any',
  needsArg: true,
  feat: 'PROT',
  run(s, arg) {
    if (!s.isTls) throw new FtpError(503, 'PROT requires AUTH TLS first');
    // RFC 2228: PROT is refused until PBSZ has been sent.
    if (!s.params.pbsz) throw new FtpError(503, 'PBSZ must come before PROT');
    const level = arg.trim().toUpperCase();
    if (level === 'P') {
      s.params = { ...s.params, prot: 'P' };
      return { code: 200, text: 'Protection level set to Private' };
    }
    if (level === 'C') {
      if (s.server.config.tls.requireForData) throw new FtpError(534, 'PROT C refused: data connections must be encrypted', { reason: 'prot_c_refused' });
      s.params = { ...s.params, prot: 'C' };
      return { code: 200, text: 'Protection level set to Clear' };
    }
    if (level === 'S' || level === 'E') throw new FtpError(536, `Protection level ${level} not supported`);
    throw new FtpError(504, `Unknown protection level ${level}`);
  },
};
