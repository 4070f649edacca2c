import { quotePath } from '../protocol/reply.js';
import type { CommandSpec } from './command-spec.js';
import { auditFileOp, requirePermission, resolveArg } from './path-args.js';

export const MKD: CommandSpec = {
  verb: 'MKD',
  aliases: ['XMKD'],
  syntax: 'MKD <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const path = resolveArg(s, arg);
    requirePermission(s, 'mkdir', path);
    await s.storage.mkdir(path);
    auditFileOp(s, 'mkdir', { path });
    return { code: 257, text: `${quotePath(path)} created` };
  },
};
