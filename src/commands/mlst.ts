import { formatMlsxFacts, mlsxPerm } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg } from './path-args.js';
import { accessOf } from '../access/login-user.js';

/** RFC 3659 §7: facts about one path, over the control connection. */
export const MLST: CommandSpec = {
  verb: 'MLST',
  syntax: 'MLST [<path>]',
  availability: 'loggedIn',
  feat: 'MLST type*;size*;modify*;perm*;unique*;',
  async run(s, arg) {
    const path = resolveArg(s, arg === '' ? '.' : arg);
    requirePermission(s, 'list', path);
    const info = await s.storage.stat(path);
    const facts = formatMlsxFacts(info, mlsxPerm(info.type, accessOf(s.user).permissionsAt(path)), { name: path });
    return { code: 250, text: [`Listing ${path}`, facts, 'End'] };
  },
};
