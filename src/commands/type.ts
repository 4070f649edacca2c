import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 959 §3.1.1: A (with optional N format) and I / L 8. */
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
    throw new FtpError(504, `TYPE ${t} not supported`);
  },
};
