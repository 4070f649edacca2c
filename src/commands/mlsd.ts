import { FtpError } from '../errors.js';
import { formatMlsxFacts, mlsxPerm } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { accessOf } from '../access/login-user.js';
import { formatLines, openListTarget, sendListing } from './listing.js';

/** RFC 3659 §7: machine-readable listing of a directory (501-class error for a file). */
export const MLSD: CommandSpec = {
  verb: 'MLSD',
  syntax: 'MLSD [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    const target = await openListTarget(s, arg);
    if (!target.dir) {
      await target.close();
      throw new FtpError(501, 'MLSD needs a directory; use MLST for a file');
    }
    const perms = accessOf(s.user).permissionsAt(target.path);
    const cdir = formatMlsxFacts(target.self, mlsxPerm('cdir', perms), { role: 'cdir', name: '.' });
    return sendListing(s, target, formatLines(target.entries(), (e) => formatMlsxFacts(e, mlsxPerm(e.type, perms)), [cdir]));
  },
};
