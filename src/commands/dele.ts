import type { CommandSpec } from './command-spec.js';
import { auditFileOp, requirePermission, resolveArg } from './path-args.js';

export const DELE: CommandSpec = {
  verb: 'DELE',
  syntax: 'DELE <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const path = resolveArg(s, arg);
    requirePermission(s, 'delete', path);
    await s.storage.unlink(path);
    auditFileOp(s, 'delete', { path });
    return { code: 250, text: 'File deleted' };
  },
};
