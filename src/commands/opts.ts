import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/**
 * RFC 2389 OPTS: UTF8 (RFC 2640, always on), MLST facts (RFC 3659), HASH algorithm. RFC 2389 §4 answers an option
 * name it does not know with 501; a HASH algorithm that exists but is not offered is 504 (the command is known,
 * that parameter is not implemented), so FileZilla-style clients fall back to SHA-256.
 */
export const OPTS: CommandSpec = {
  verb: 'OPTS',
  syntax: 'OPTS UTF8 ON | OPTS MLST <facts> | OPTS HASH <algorithm>',
  availability: 'any',
  needsArg: true,
  feat: 'UTF8',
  run(_s, arg) {
    const [name = '', ...rest] = arg.trim().split(/\s+/);
    const value = rest.join(' ');
    switch (name.toUpperCase()) {
      case 'UTF8':
      case 'UTF-8':
        return { code: 200, text: 'UTF8 mode is always on' };
      case 'MLST':
        // The full fact set is always sent; clients ignore facts they did not ask for.
        return { code: 200, text: `MLST OPTS ${value === '' ? '' : 'type;size;modify;perm;unique;'}` };
      case 'HASH':
        if (value === '' || value.toUpperCase() === 'SHA-256') return { code: 200, text: 'SHA-256' };
        if (/\s/.test(value)) throw new FtpError(501, 'Syntax: OPTS HASH <algorithm>', { reason: 'opts_syntax' });
        throw new FtpError(504, `Hash algorithm ${value} not supported; use SHA-256`, { reason: 'hash_algorithm_unsupported' });
      default:
        throw new FtpError(501, `Option ${name} not understood`, { reason: 'opts_unknown' });
    }
  },
};
