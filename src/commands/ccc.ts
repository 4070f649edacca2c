import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 4217 §12.3: clearing the control channel would expose later commands; refused by policy. */
export const CCC: CommandSpec = {
  verb: 'CCC',
  syntax: 'CCC',
  availability: 'any',
  run(s) {
    if (!s.isTls) throw new FtpError(533, 'Control connection is not protected');
    throw new FtpError(534, 'CCC refused: the control connection stays encrypted', { reason: 'ccc_refused' });
  },
};
