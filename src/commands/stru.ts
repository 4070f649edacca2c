import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

export const STRU: CommandSpec = {
  verb: 'STRU',
  syntax: 'STRU F',
  availability: 'any',
  needsArg: true,
  run(_s, arg) {
    if (arg.trim().toUpperCase() === 'F') return { code: 200, text: 'Structure set to F' };
    throw new FtpError(504, 'Only STRU F (file) is supported');
  },
};
