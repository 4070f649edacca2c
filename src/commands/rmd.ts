import type { CommandSpec } from './command-spec.js';
import { auditFileOp, requirePermission, resolveArg } from './path-args.js';

export const RMD: CommandSpec = {
  verb: 'RMD',
  aliases: ['XRMD'],
  syntax: 'RMD <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const path = resolveArg(s, arg);
    requirePermission(s, 'delete', path);
    await s.storage.rmdir(path);
    auditFileOp(s, 'rmdir', { path });
    return { code: 250, text: 'Directory removed' };
  },
};
