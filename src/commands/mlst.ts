import { formatMlsxFacts, mlsxPerm } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg } from './path-args.js';

/** RFC 3659 §7: facts about one path, over the control connection. */
export const MLST: CommandSpec = {
  verb: 'MLST',
  syntax: 'MLST [<path>]',
  availability: 'loggedIn',
  feat: 'MLST type*;size*;modify*;perm*;unique*;',
  async run(s, arg) {
    requirePermission(s, 'list');
    const path = resolveArg(s, arg === '' ? '.' : arg);
    const info = await s.storage.stat(path);
    const facts = formatMlsxFacts(info, mlsxPerm(info.type, s.user.permissions), { name: path });
    return { code: 250, text: [`Listing ${path}`, facts, 'End'] };
  },
};
