import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg } from './path-args.js';

export const RNFR: CommandSpec = {
  verb: 'RNFR',
  syntax: 'RNFR <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const path = resolveArg(s, arg);
    requirePermission(s, 'rename', path);
    await s.storage.stat(path);
    s.params = { ...s.params, renameFrom: path };
    return { code: 350, text: 'Ready for RNTO' };
  },
};
