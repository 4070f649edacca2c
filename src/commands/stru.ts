import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/**
 * RFC 959 §3.1.2: F (file) is supported; R (record) and P (page) are RFC structures we do not implement, so they are
 * 504, which clients such as those written for vsftpd take as "keep F". Anything else is a 501 syntax error.
 */
export const STRU: CommandSpec = {
  verb: 'STRU',
  syntax: 'STRU F',
  availability: 'any',
  needsArg: true,
  run(_s, arg) {
    const code = arg.trim().toUpperCase();
    if (code === 'F') return { code: 200, text: 'Structure set to F' };
    if (code === 'R' || code === 'P') throw new FtpError(504, `STRU ${code} not implemented; only STRU F (file) is supported`, { reason: 'stru_unsupported' });
    throw new FtpError(501, 'Syntax: STRU F|R|P', { reason: 'stru_syntax' });
  },
};
