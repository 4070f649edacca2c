import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

export const MODE: CommandSpec = {
  verb: 'MODE',
  syntax: 'MODE S',
  availability: 'any',
  needsArg: true,
  run(_s, arg) {
    if (arg.trim().toUpperCase() === 'S') return { code: 200, text: 'Mode set to S' };
    throw new FtpError(504, 'Only MODE S (stream) is supported');
  },
};
