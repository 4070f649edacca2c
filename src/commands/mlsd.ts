import { FtpError } from '../errors.js';
import { formatMlsxFacts, mlsxPerm } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { listTarget, sendListing } from './listing.js';
import { accessOf } from '../access/login-user.js';

/** RFC 3659 §7: machine-readable listing of a directory (501-class error for a file). */
export const MLSD: CommandSpec = {
  verb: 'MLSD',
  syntax: 'MLSD [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    const { path, dir, entries } = await listTarget(s, arg);
    if (!dir) throw new FtpError(501, 'MLSD needs a directory; use MLST for a file');
    const perms = accessOf(s.user).permissionsAt(path);
    const self = await s.storage.stat(path);
    const lines = [formatMlsxFacts(self, mlsxPerm('cdir', perms), { role: 'cdir', name: '.' }), ...entries.map((e) => formatMlsxFacts(e, mlsxPerm(e.type, perms)))];
    return sendListing(s, lines);
  },
};
