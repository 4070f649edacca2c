import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 959 §3.4: S (stream) is supported; B (block) and C (compressed) are 504; anything else a 501 syntax error. */
export const MODE: CommandSpec = {
  verb: 'MODE',
  syntax: 'MODE S',
  availability: 'any',
  needsArg: true,
  run(_s, arg) {
    const code = arg.trim().toUpperCase();
    if (code === 'S') return { code: 200, text: 'Mode set to S' };
    if (code === 'B' || code === 'C') throw new FtpError(504, `MODE ${code} not implemented; only MODE S (stream) is supported`, { reason: 'mode_unsupported' });
    throw new FtpError(501, 'Syntax: MODE S|B|C', { reason: 'mode_syntax' });
  },
};
