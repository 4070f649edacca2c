import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';
import { auditFileOp, requirePermission, resolveArg } from './path-args.js';

export const RNTO: CommandSpec = {
  verb: 'RNTO',
  syntax: 'RNTO <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const from = s.params.renameFrom;
    // RFC 959: RNTO must immediately follow RNFR.
    if (from === null) throw new FtpError(503, 'RNFR required first');
    s.params = { ...s.params, renameFrom: null };
    const to = resolveArg(s, arg);
    requirePermission(s, 'rename', to);
    await s.storage.rename(from, to);
    auditFileOp(s, 'rename', { path: from, to });
    return { code: 250, text: 'Rename successful' };
  },
};
