import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 4217 §8: for TLS the buffer size is always 0; any other value is answered with PBSZ=0. */
export const PBSZ: CommandSpec = {
  verb: 'PBSZ',
  syntax: 'PBSZ 0',
  availability: 'any',
  needsArg: true,
  feat: 'PBSZ',
  run(s, arg) {
    if (!s.isTls) throw new FtpError(503, 'PBSZ requires AUTH TLS first');
    if (!/^\d+$/.test(arg.trim())) throw new FtpError(501, 'PBSZ takes a number');
    s.params = { ...s.params, pbsz: true };
    return { code: 200, text: arg.trim() === '0' ? 'PBSZ=0' : 'PBSZ=0 (TLS needs no buffer size)' };
  },
};
