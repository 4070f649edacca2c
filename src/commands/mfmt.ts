import { FtpError } from '../errors.js';
import { formatMdtm, parseMfmtTime } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { auditFileOp, requirePermission, resolveArg } from './path-args.js';

/** draft-somers-ftp-mfxx: MFMT <YYYYMMDDHHMMSS> <path>, times in UTC. */
export const MFMT: CommandSpec = {
  verb: 'MFMT',
  syntax: 'MFMT <YYYYMMDDHHMMSS> <path>',
  availability: 'loggedIn',
  needsArg: true,
  feat: 'MFMT',
  async run(s, arg) {
    const m = /^(\S+) (.+)$/.exec(arg);
    const time = m === null ? null : parseMfmtTime(m[1]!);
    if (m === null || time === null) throw new FtpError(501, 'Syntax: MFMT YYYYMMDDHHMMSS path');
    const path = resolveArg(s, m[2]!);
    requirePermission(s, 'overwrite', path);
    await s.storage.setMtime(path, time);
    auditFileOp(s, 'set_mtime', { path, mtime: time.toISOString() });
    return { code: 213, text: `Modify=${formatMdtm(time)}; ${m[2]}` };
  },
};
